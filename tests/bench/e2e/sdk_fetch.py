"""One fetch with Python requests: GET the latest version from the download host (E8, which
redirects to a presigned GET), stream the body to OUT.zip in 1 MiB chunks, then
zipfile.extractall into DIR.

usage: sdk_fetch.py OUT.zip DIR
Reads SKAFOS_DOWNLOAD_URL, SKAFOS_API_TOKEN, SKAFOS_ORG_NAME, SKAFOS_APP_NAME, SKAFOS_MODEL_NAME.
"""
import os
import sys
import zipfile

import requests


def main():
    out, dest = sys.argv[1], sys.argv[2]
    env = os.environ
    url = "{}/organizations/{}/apps/{}/models/{}".format(
        env["SKAFOS_DOWNLOAD_URL"], env["SKAFOS_ORG_NAME"], env["SKAFOS_APP_NAME"], env["SKAFOS_MODEL_NAME"])
    with requests.get(url, headers={"X-API-TOKEN": env["SKAFOS_API_TOKEN"]}, stream=True) as r:
        r.raise_for_status()
        with open(out, "wb") as f:
            for chunk in r.iter_content(chunk_size=1 << 20):
                f.write(chunk)
    with zipfile.ZipFile(out) as zf:
        zf.extractall(dest)


if __name__ == "__main__":
    main()

"""One publish the way the old Python SDK did it: zipfile with ZIP_DEFLATED into a file,
the whole archive read into memory, requests.put of those bytes, and the same three API
calls (create E4, PUT to the presigned URL, finalize E6) with requests.

usage: sdk_publish.py OUT.zip INPUT   (run from INPUT's directory; INPUT is a relative name)
Reads SKAFOS_API_URL, SKAFOS_API_TOKEN, SKAFOS_ORG_NAME, SKAFOS_APP_NAME, SKAFOS_MODEL_NAME.
"""
import os
import sys
import zipfile

import requests


def main():
    out, inp = sys.argv[1], sys.argv[2]
    env = os.environ
    base = "{}/organizations/{}/apps/{}/models/{}".format(
        env["SKAFOS_API_URL"], env["SKAFOS_ORG_NAME"], env["SKAFOS_APP_NAME"], env["SKAFOS_MODEL_NAME"])
    headers = {"X-API-TOKEN": env["SKAFOS_API_TOKEN"]}
    session = requests.Session()

    r = session.post(base + "/model_versions", headers=headers,
                     json={"filename": env["SKAFOS_MODEL_NAME"] + ".zip"})
    r.raise_for_status()
    created = r.json()

    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        if os.path.isdir(inp):
            for root, dirs, files in os.walk(inp):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(root, name)
                    zf.write(path, path)
        else:
            zf.write(inp, os.path.basename(inp))

    with open(out, "rb") as f:
        data = f.read()
    r = session.put(created["presigned_url"], data=data,
                    headers={"Content-Type": "application/octet-stream"})
    if r.status_code != 200:
        sys.exit("sdk_publish.py: PUT answered %d: %s" % (r.status_code, r.text[:200]))
    del data

    r = session.patch("{}/model_versions/{}".format(base, created["model_version_id"]), headers=headers,
                      json={"filepath": created["filepath"]})
    r.raise_for_status()
    print(created["model_version_id"])


if __name__ == "__main__":
    main()

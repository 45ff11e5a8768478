function __fish_skafos_print_command
    set -l cmdline (commandline -poc)
    set -l cmd
    set -e cmdline[1]
    for arg in $cmdline
        switch $arg
            case auth
                set cmd $cmd auth
                set -e cmdline[1]
                for arg in $cmdline
                    switch $arg
                        case status
                            set cmd $cmd status
                            break
                    end
                end
                break
            case config
                set cmd $cmd config
                break
            case deploy
                set cmd $cmd deploy
                break
            case environments
                set cmd $cmd environments
                break
            case fetch
                set cmd $cmd fetch
                break
            case login
                set cmd $cmd login
                break
            case logout
                set cmd $cmd logout
                break
            case models
                set cmd $cmd models
                set -e cmdline[1]
                for arg in $cmdline
                    switch $arg
                        case create
                            set cmd $cmd create
                            break
                    end
                end
                break
            case publish
                set cmd $cmd publish
                break
            case summary
                set cmd $cmd summary
                break
            case versions
                set cmd $cmd versions
                break
            case help
                set cmd $cmd help
                break
            case run
                set cmd $cmd run
                break
            case scripts
                set cmd $cmd scripts
                break
            case completion
                set cmd $cmd completion
                break
        end
    end
    echo "$cmd"
end

function __fish_skafos_using_command
    test (__fish_skafos_print_command) = "$argv"
    and return 0
    or return 1
end

function __fish_skafos_seen_command
    string match -q "$argv*" (__fish_skafos_print_command)
    and return 0
    or return 1
end

complete -c skafos -n '__fish_skafos_using_command' -xa 'auth' -d 'Authentication: \'skafos auth status\' (see also \'skafos login\' and \'skafos logout\')'
complete -c skafos -n '__fish_skafos_using_command' -xa 'config' -d 'Show the resolved settings and where each came from'
complete -c skafos -n '__fish_skafos_using_command' -xa 'deploy' -d 'Deploy a model version to an environment'
complete -c skafos -n '__fish_skafos_using_command' -xa 'environments' -d 'List the model\'s environments with their device counts'
complete -c skafos -n '__fish_skafos_using_command' -xa 'fetch' -d 'Download a model version (latest by default), verify it and optionally unzip it'
complete -c skafos -n '__fish_skafos_using_command' -xa 'login' -d 'Store an API token for later commands, once the API accepts it'
complete -c skafos -n '__fish_skafos_using_command' -xa 'logout' -d 'Remove the token \'skafos login\' stored'
complete -c skafos -n '__fish_skafos_using_command' -xa 'models' -d 'Manage models: \'skafos models create NAME [-m TEXT]\''
complete -c skafos -n '__fish_skafos_using_command' -xa 'publish' -d 'Publish files or directories as a new model version'
complete -c skafos -n '__fish_skafos_using_command' -xa 'summary' -d 'List the organizations, apps and models the token can see'
complete -c skafos -n '__fish_skafos_using_command' -xa 'versions' -d 'List the model\'s versions, oldest first'
complete -c skafos -n '__fish_skafos_using_command' -xa 'help' -d 'Show help for skafos or for one command'
complete -c skafos -n '__fish_skafos_using_command' -xa 'run' -d 'Run a Lua script with the skafos modules'
complete -c skafos -n '__fish_skafos_using_command' -xa 'scripts' -d 'Show the script lookup order; \'scripts dump NAME\' prints a built-in workflow'
complete -c skafos -n '__fish_skafos_using_command' -xa 'completion' -d 'Print the completion script for a shell: bash, zsh or fish'
complete -c skafos -s h -l help -d 'Show help'
complete -c skafos -s V -l version -d 'Show versions'
complete -c skafos -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'

complete -c skafos -n '__fish_skafos_using_command auth' -xa 'status' -d 'Say where the API token comes from and whether the API accepts it, without showing it'
complete -c skafos -n '__fish_skafos_seen_command auth' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command auth' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command auth status' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command auth status' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command auth status' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command auth status' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command auth status' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command config' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command config' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command config' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command config' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command config' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command config' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command config' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command config' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command config' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command config' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command config' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command config' -l json -d 'As JSON'
complete -c skafos -n '__fish_skafos_seen_command config' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command config' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command deploy' -l version -r -d 'Version number or latest (default: latest)'
complete -c skafos -n '__fish_skafos_seen_command deploy' -s e -l env -r -d 'Environment to deploy to (e.g'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command deploy' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command deploy' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command deploy' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command deploy' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command environments' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command environments' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command environments' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command environments' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command environments' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command environments' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command environments' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command environments' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command environments' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command environments' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command environments' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command environments' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command environments' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command environments' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command environments' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command environments' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command fetch' -l version -r -d 'Version number or latest (default: latest)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -s o -l output -r -d 'Where to write the archive (default ./<model>.zip; - for standard output; with --unzip, none is kept unless -o is given)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l unzip -d 'Extract into DIR (default ./<model>/), while downloading when -o is not given'
complete -c skafos -n '__fish_skafos_seen_command fetch' -s f -l force -d 'Replace an existing archive or directory'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l connections -r -d 'Download the archive over up to N connections at once, each asking for a range of it (default 8; 1 = a single connection; --unzip extracts them in order); config connections'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l max-entries -r -d 'Refuse an archive of more than N entries before anything is written (default 1000000; 0: no limit)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command fetch' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command fetch' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command fetch' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command login' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command login' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command login' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command login' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command login' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command login' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command login' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command login' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command login' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command login' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command login' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command login' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command login' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command login' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command login' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command login' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command logout' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command logout' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command logout' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command logout' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command logout' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_using_command models' -xa 'create' -d 'Create a model (a "bin" for versions) in the app'
complete -c skafos -n '__fish_skafos_seen_command models' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command models' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command models create' -s m -l description -r -d 'Description of the model'
complete -c skafos -n '__fish_skafos_seen_command models create' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command models create' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command models create' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command models create' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command models create' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command models create' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command models create' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command models create' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command models create' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command models create' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command models create' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command models create' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command models create' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command models create' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command models create' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command models create' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command publish' -s m -l description -r -d 'Description stored with the version (at most 255 characters)'
complete -c skafos -n '__fish_skafos_seen_command publish' -l level -r -d 'Compression: auto (store what does not compress), store, or 1-9 (default: auto)'
complete -c skafos -n '__fish_skafos_seen_command publish' -l dry-run -d 'Check the inputs and print the plan; send nothing'
complete -c skafos -n '__fish_skafos_seen_command publish' -l allow-empty -d 'Publish a directory that holds no files'
complete -c skafos -n '__fish_skafos_seen_command publish' -l keep-os-files -d 'Keep the .DS_Store, ._*, __MACOSX, Thumbs.db and desktop.ini found in directories (left out by default)'
complete -c skafos -n '__fish_skafos_seen_command publish' -l max-entries -r -d 'Refuse an archive of more than N entries before anything is written (default 1000000; 0: no limit)'
complete -c skafos -n '__fish_skafos_seen_command publish' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command publish' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command publish' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command publish' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command publish' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command publish' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command publish' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command publish' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command publish' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command publish' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command publish' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command publish' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command publish' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command publish' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command publish' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command publish' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command summary' -l compact -d 'As a tree {org: {app: [models]}}'
complete -c skafos -n '__fish_skafos_seen_command summary' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command summary' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command summary' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command summary' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command summary' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command summary' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command summary' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command summary' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command summary' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command summary' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command summary' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command summary' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command summary' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command summary' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command summary' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command summary' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command versions' -l limit -r -d 'Only the newest N versions'
complete -c skafos -n '__fish_skafos_seen_command versions' -l org -r -d 'Organization (display name); env SKAFOS_ORG_NAME'
complete -c skafos -n '__fish_skafos_seen_command versions' -l app -r -d 'App name; env SKAFOS_APP_NAME'
complete -c skafos -n '__fish_skafos_seen_command versions' -l model -r -d 'Model name; env SKAFOS_MODEL_NAME'
complete -c skafos -n '__fish_skafos_seen_command versions' -l api-url -r -d 'API base URL; env SKAFOS_API_URL'
complete -c skafos -n '__fish_skafos_seen_command versions' -l download-url -r -d 'Download base URL; env SKAFOS_DOWNLOAD_URL'
complete -c skafos -n '__fish_skafos_seen_command versions' -l hosts -xa 'production staging' -d 'Hosts to use when no URL is set: production or staging'
complete -c skafos -n '__fish_skafos_seen_command versions' -l token-file -r -d 'Read the API token from this file (else SKAFOS_API_TOKEN)'
complete -c skafos -n '__fish_skafos_seen_command versions' -l ca-file -r -d 'Verify the servers with the CA certificates (PEM) in this file instead of the system\'s, e.g'
complete -c skafos -n '__fish_skafos_seen_command versions' -l speed-limit -r -d 'Abandon (and retry) a transfer slower than this many bytes/s for --speed-time (default 1024)'
complete -c skafos -n '__fish_skafos_seen_command versions' -l speed-time -r -d 'Seconds a transfer may stay under --speed-limit (default 30)'
complete -c skafos -n '__fish_skafos_seen_command versions' -l timeout -r -d 'Give up the whole command after this many seconds (exit 6; what was downloaded is kept)'
complete -c skafos -n '__fish_skafos_seen_command versions' -l json -d 'Print the result as one JSON document on stdout'
complete -c skafos -n '__fish_skafos_seen_command versions' -s q -l quiet -d 'Print only the essential result (publish: the version; fetch: the path; lists: one name per line) and errors'
complete -c skafos -n '__fish_skafos_seen_command versions' -l progress -xa 'bar plain none' -d 'Progress display (default: bar on a terminal, else plain)'
complete -c skafos -n '__fish_skafos_seen_command versions' -s v -l verbose -d 'More messages; twice traces HTTP (secrets redacted)'
complete -c skafos -n '__fish_skafos_seen_command versions' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command help' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command run' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command scripts' -s h -l help -d 'Show this help and exit'

complete -c skafos -n '__fish_skafos_seen_command completion' -s h -l help -d 'Show this help and exit'

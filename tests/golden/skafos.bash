_skafos() {
    local IFS=$' \t\n'
    local args cur prev cmd opts arg
    args=("${COMP_WORDS[@]}")
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    opts="-h --help -V --version -v --verbose"

    args=("${args[@]:1}")
    for arg in "${args[@]}"; do
        case "$arg" in
            auth)
                cmd="auth"
                opts="$opts -v --verbose -h --help"
                args=("${args[@]:1}")
                for arg in "${args[@]}"; do
                    case "$arg" in
                        status)
                            cmd="$cmd status"
                            opts="$opts --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                            break
                            ;;
                    esac
                done
                break
                ;;
            config)
                cmd="config"
                opts="$opts --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -v --verbose -h --help"
                break
                ;;
            deploy)
                cmd="deploy"
                opts="$opts --version -e --env --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                break
                ;;
            environments)
                cmd="environments"
                opts="$opts --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                break
                ;;
            fetch)
                cmd="fetch"
                opts="$opts --version -o --output --unzip -f --force --connections --max-entries --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                break
                ;;
            login)
                cmd="login"
                opts="$opts --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                break
                ;;
            logout)
                cmd="logout"
                opts="$opts --json -q --quiet --progress -v --verbose -h --help"
                break
                ;;
            models)
                cmd="models"
                opts="$opts -v --verbose -h --help"
                args=("${args[@]:1}")
                for arg in "${args[@]}"; do
                    case "$arg" in
                        create)
                            cmd="$cmd create"
                            opts="$opts -m --description --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                            break
                            ;;
                    esac
                done
                break
                ;;
            publish)
                cmd="publish"
                opts="$opts -m --description --level --dry-run --allow-empty --keep-os-files --max-entries --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                break
                ;;
            summary)
                cmd="summary"
                opts="$opts --compact --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                break
                ;;
            versions)
                cmd="versions"
                opts="$opts --limit --org --app --model --api-url --download-url --hosts --token-file --ca-file --speed-limit --speed-time --timeout --json -q --quiet --progress -v --verbose -h --help"
                break
                ;;
            help)
                cmd="help"
                opts="$opts -h --help"
                break
                ;;
            run)
                cmd="run"
                opts="$opts -h --help"
                break
                ;;
            scripts)
                cmd="scripts"
                opts="$opts -h --help"
                break
                ;;
            completion)
                cmd="completion"
                opts="$opts -h --help"
                break
                ;;
        esac
    done

    case "$cmd" in
        '')
            COMPREPLY=($(compgen -W "auth config deploy environments fetch login logout models publish summary versions help run scripts completion" -- "$cur"))
            ;;
        'auth')
            COMPREPLY=($(compgen -W "status" -- "$cur"))
            ;;
        'auth status')
            case "$prev" in
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'config')
            case "$prev" in
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'deploy')
            case "$prev" in
                --version)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                -e|--env)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'environments')
            case "$prev" in
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'fetch')
            case "$prev" in
                --version)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                -o|--output)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --connections)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --max-entries)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'login')
            case "$prev" in
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'logout')
            case "$prev" in
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'models')
            COMPREPLY=($(compgen -W "create" -- "$cur"))
            ;;
        'models create')
            case "$prev" in
                -m|--description)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'publish')
            case "$prev" in
                -m|--description)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --level)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --max-entries)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'summary')
            case "$prev" in
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
        'versions')
            case "$prev" in
                --limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --org)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --app)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --model)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --api-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --download-url)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --hosts)
                    COMPREPLY=($(compgen -W "production staging" -- "$cur"))
                    return 0
                    ;;
                --token-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --ca-file)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-limit)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --speed-time)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -W "bar plain none" -- "$cur"))
                    return 0
                    ;;
            esac

            ;;
    esac

    if [[ "$cur" = -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
}

complete -F _skafos -o bashdefault -o default skafos

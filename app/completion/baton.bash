# bash completion for baton(1)                             -*- shell-script -*-
#
# Installed as share/bash-completion/completions/baton (loaded on demand by
# bash-completion), or: source app/completion/baton.bash
#
# Completes the subcommands, each one's options (those of app/main.c,
# app/service/serve.c and app/cli/cli.c), job names after `start` and
# `runs --job`, and run ids after pause/resume/stop/status/events/watch.
#
# Job names: the CLI has no command listing jobs, so they are read from the
# `[jobs.NAME]` headers of the config file the command would use: --config
# on the line, else $BATON_CONFIG, else ./config.toml.
# Run ids: asked of the service with
#     baton runs --json --all --state STATES --timeout 2
# (plus --config/--url/--token from the line) and picked out of the JSON
# with awk and grep, so there is no jq dependency. STATES are the states the
# command accepts: pause pending,running; resume paused; the others the
# active ones, pending,running,paused. Nothing is offered when the service
# does not answer within 2 s.
#
# Works with or without the bash-completion package (no _init_completion).
#
# COMPREPLY=($(compgen ...)) splits on white space, which is fine for every
# word offered here (subcommands, options, states, job names, run ids)
# except file names, which go through mapfile.
# shellcheck disable=SC2207

# The states of a run, for runs --state.
_baton_states="pending running paused completed failed stopped"

# Prints the job names of the config file ($1).
_baton_jobs()
{
    local file=$1
    [[ -r $file ]] || return 0
    sed -n 's/^[[:space:]]*\[[[:space:]]*jobs[[:space:]]*\.[[:space:]]*"\{0,1\}\([A-Za-z0-9_-]\{1,63\}\)"\{0,1\}[[:space:]]*\][[:space:]]*\(#.*\)\{0,1\}$/\1/p' \
        "$file" 2>/dev/null
}

# Prints the ids of the runs in the states $2 (comma-separated), asking
# the service through the command $1; the remaining arguments are the
# connection options to pass on. The answer is {"runs": [{"id": ...}, ...]}:
# a small awk scanner takes the "id" keys of the objects inside "runs"
# (depth 3) only, never one inside a run's params.
_baton_run_ids()
{
    local cmd=$1 states=$2
    shift 2
    "$cmd" runs --json --all --state "$states" --timeout 2 "$@" 2>/dev/null |
        awk '
        {
            n = length($0)
            for (i = 1; i <= n; i++) {
                ch = substr($0, i, 1)
                if (ch == "\"") {
                    # A string: up to the next unescaped quote.
                    j = i + 1; str = ""
                    while (j <= n && (c = substr($0, j, 1)) != "\"") {
                        if (c == "\\") { str = str c; j++; c = substr($0, j, 1) }
                        str = str c; j++
                    }
                    i = j
                    k = i + 1
                    while ((c = substr($0, k, 1)) == " " || c == "\t") k++
                    if (c == ":") key = str
                    else if (key == "id" && depth == 3) print str
                    continue
                }
                if (ch == "{" || ch == "[") depth++
                else if (ch == "}" || ch == "]") depth--
            }
        }' |
        grep -x '[0-9a-fA-F]\{8\}-[0-9a-fA-F]\{4\}-[0-9a-fA-F]\{4\}-[0-9a-fA-F]\{4\}-[0-9a-fA-F]\{12\}'
}

_baton()
{
    local cur prev cword words
    COMPREPLY=()
    cword=$COMP_CWORD
    words=("${COMP_WORDS[@]}")
    cur=${words[cword]}
    prev=
    ((cword > 0)) && prev=${words[cword - 1]}

    # `--opt=value`: COMP_WORDBREAKS splits it into --opt, =, value.
    if [[ $cur == "=" ]]; then
        cur=
        prev=${words[cword - 1]}
    elif [[ $prev == "=" ]] && ((cword >= 2)); then
        prev=${words[cword - 2]}
    fi

    local cmd=${words[0]}
    local subcommands="serve check-config start pause resume stop status runs events watch help"

    # The subcommand: the first word after the program name.
    local sub='' i
    for ((i = 1; i < cword; i++)); do
        if [[ ${words[i]} != -* ]]; then
            sub=${words[i]}
            break
        fi
    done
    if [[ -z $sub ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
        fi
        return 0
    fi

    # The connection options given so far (and the config file), passed on
    # to `baton runs` and used for the job names.
    local -a conn=()
    local config=
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --config | --url | --token)
            local val=${words[i + 1]}
            [[ $val == "=" ]] && val=${words[i + 2]}
            if [[ -n $val && $val != -* ]]; then
                conn+=("${words[i]}" "$val")
                [[ ${words[i]} == --config ]] && config=$val
            fi
            ;;
        esac
    done
    if [[ -z $config ]]; then
        config=${BATON_CONFIG:-config.toml}
    fi
    # A leading ~ as the shell would expand it.
    config=${config/#\~/$HOME}

    # The value of an option.
    case $prev in
    --config)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -X '!*.toml' -- "$cur"; compgen -d -- "$cur")
        return 0
        ;;
    --log-level)
        COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
        return 0
        ;;
    --job)
        COMPREPLY=($(compgen -W "$(_baton_jobs "$config")" -- "$cur"))
        return 0
        ;;
    --state)
        # A comma-separated list: complete its last element.
        local head=${cur%,*} last=${cur##*,} s
        [[ $head == "$cur" ]] && head= || head="$head,"
        for s in $_baton_states; do
            [[ $s == "$last"* ]] && COMPREPLY+=("$head$s")
        done
        compopt -o nospace 2>/dev/null
        return 0
        ;;
    --url | --token | --timeout | --param | --param-json | --idempotency-key | --limit)
        return 0
        ;;
    esac

    local global="--config --url --token --json --timeout --help"
    local opts positional=
    case $sub in
    serve) opts="--config --log-level --help" ;;
    check-config)
        opts="--config --help"
        positional=config
        ;;
    start)
        opts="--param --param-json --idempotency-key $global"
        positional=job
        ;;
    pause)
        opts=$global
        positional=pending,running
        ;;
    resume)
        opts=$global
        positional=paused
        ;;
    stop | status | events | watch)
        opts=$global
        positional=pending,running,paused
        ;;
    runs) opts="--job --state --limit --all $global" ;;
    help)
        opts=
        positional=help
        ;;
    *) return 0 ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi

    # Only the first positional argument is completed: count those before
    # the cursor (skipping options and their values).
    local npos=0 seen_sub=0
    for ((i = 1; i < cword; i++)); do
        local w=${words[i]}
        if ((!seen_sub)); then
            [[ $w == "$sub" ]] && seen_sub=1
            continue
        fi
        case $w in
        =) ;;
        --config | --url | --token | --timeout | --param | --param-json | --idempotency-key | \
            --job | --state | --limit | --log-level)
            ((i++))
            [[ ${words[i]} == "=" ]] && ((i++))
            ;;
        -*) ;;
        *) ((npos++)) ;;
        esac
    done
    ((npos == 0)) || return 0

    case $positional in
    "") ;;
    config)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -X '!*.toml' -- "$cur"; compgen -d -- "$cur")
        ;;
    job)
        COMPREPLY=($(compgen -W "$(_baton_jobs "$config")" -- "$cur"))
        ;;
    help)
        COMPREPLY=($(compgen -W "${subcommands% help}" -- "$cur"))
        ;;
    *)
        COMPREPLY=($(compgen -W "$(_baton_run_ids "$cmd" "$positional" "${conn[@]}")" -- "$cur"))
        ;;
    esac
    return 0
}

complete -F _baton baton

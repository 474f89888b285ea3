# bash completion for the provbus programs
_provbus_files() { COMPREPLY+=($(compgen -f -- "$cur")); }

_provbus() {
	local cur prev prog verbs opts
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	prog=${COMP_WORDS[0]##*/}
	COMPREPLY=()
	case $prev in
	-c|-d|--html|--body-file|--password-file) _provbus_files; return ;;
	esac
	case $prog in
	provbus-schema) verbs="apply verify export"; opts="-c --url -h --help --version -v" ;;
	provbus-publish) verbs="provides retire flush"; opts="-c --ttl --dry-run --timeout -h --help --version -v" ;;
	provbus-consumer) verbs="run status pause resume provision-now"; opts="-c -f -n --prometheus -h --help --version -v" ;;
	provbus-audit) verbs="events runs explain replay timeline export"
		opts="-c -d --since --until --key --verdict --json --quiet-ms --max-wait-ms --throttle --html --jsonl -h --help --version -v" ;;
	provbus-fleet) verbs="nodes providers converged watch"
		opts="-c --url --federation --password-file --region --node --wait --json --no-verify-sender -h --help --version -v" ;;
	esac
	if [ "$prog" = provbus-audit ] && [ "$prev" = --verdict ]; then
		COMPREPLY=($(compgen -W "applied duplicate stale foreign expired invalid" -- "$cur")); return
	fi
	if [ "$prog" = provbus-publish ] && [[ " ${COMP_WORDS[*]} " == *" provides "* || " ${COMP_WORDS[*]} " == *" retire "* ]]; then
		local dir=/etc/provbus/services.d f
		for f in "$dir"/*.json; do [ -e "$f" ] && COMPREPLY+=($(compgen -W "$(basename "$f" .json)" -- "$cur")); done
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY+=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY+=($(compgen -W "$verbs" -- "$cur"))
		[ "$prog" = provbus-schema ] && _provbus_files
	fi
}
complete -F _provbus provbus-schema provbus-publish provbus-consumer provbus-audit provbus-fleet

# shellcheck shell=bash
# bash completion for the provbus programs: verbs (one per command line),
# every option of each program (tests/integration/t-completion.sh checks
# them against each program's --help), file names where a file is wanted,
# verdicts for --verdict (the test checks them against lib/vocab.h's table,
# as provbus-audit names them), and service ids (the "id" of each manifest in
# the configuration's services_dir) for provbus-publish provides/retire.

# the verbs of PROG
_provbus_verbs() {
	case $1 in
	provbus-schema) echo "apply verify export" ;;
	provbus-publish) echo "provides retire flush" ;;
	provbus-consumer) echo "run status pause resume provision-now" ;;
	provbus-audit) echo "events runs explain replay timeline export" ;;
	provbus-fleet) echo "nodes providers converged watch" ;;
	esac
}

# every option of PROG
_provbus_options() {
	local common="-c -v -h --help --version"
	case $1 in
	provbus-schema) echo "$common --url --credentials --no-users --management-url" ;;
	provbus-publish) echo "$common --config --verbose --ttl --dry-run --timeout" ;;
	provbus-consumer) echo "$common -f -n --prometheus" ;;
	provbus-audit) echo "$common -d --since --until --key --verdict --json --all --quiet-ms --max-wait-ms --throttle --tolerance-ms --html --jsonl" ;;
	provbus-fleet) echo "$common --url --federation --password-file --region --node --wait --json --no-verify-sender --no-cache --stream-port" ;;
	esac
}

# options whose next word is their argument
_provbus_takes_arg() {
	case $1 in
	-c|--config|-d|--url|--management-url|--credentials|--ttl|--timeout|--since|--until|--key|--verdict|\
	--quiet-ms|--max-wait-ms|--throttle|--tolerance-ms|--html|--federation|--region|--wait|--password-file|--node|--stream-port) return 0 ;;
	esac
	return 1
}

# the services_dir of the configuration named on the command line (-c,
# --config), else by $PROVBUS_CONFIG, else /etc/provbus/provbus.json
_provbus_services_dir() {
	local cfg=${PROVBUS_CONFIG:-/etc/provbus/provbus.json} i dir
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-c|--config) cfg=${COMP_WORDS[i + 1]} ;;
		--config=*) cfg=${COMP_WORDS[i]#--config=} ;;
		esac
	done
	cfg=${cfg/#\~/$HOME}
	dir=""
	[ -r "$cfg" ] && dir=$(sed -n 's/.*"services_dir"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$cfg" 2>/dev/null | head -n 1)
	echo "${dir:-/etc/provbus/services.d}"
}

# the "id" of every manifest (*.json) in the services_dir
_provbus_service_ids() {
	local dir f id
	dir=$(_provbus_services_dir)
	for f in "$dir"/*.json; do
		[ -r "$f" ] || continue
		id=$(sed -n 's/.*"id"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$f" 2>/dev/null | head -n 1)
		[ -n "$id" ] && echo "$id"
	done
}

_provbus() {
	local cur prev prog verb="" i w words
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	prog=${COMP_WORDS[0]##*/}
	COMPREPLY=()

	case $prev in
	-c|--config|-d|--html|--credentials|--password-file)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
	--verdict)
		mapfile -t COMPREPLY < <(compgen -W "applied duplicate stale foreign expired invalid" -- "$cur"); return ;;
	esac
	_provbus_takes_arg "$prev" && return

	# the verb: the first word that is neither an option nor an option's argument
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == -* ]]; then
			_provbus_takes_arg "$w" && ((i++))
			continue
		fi
		verb=$w
		break
	done

	if [[ $cur == -* ]]; then
		words=$(_provbus_options "$prog")
	elif [ -z "$verb" ]; then
		words=$(_provbus_verbs "$prog")
	else
		case $prog/$verb in
		provbus-publish/provides|provbus-publish/retire) words=$(_provbus_service_ids) ;;
		provbus-schema/*) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
		*) words="" ;;
		esac
	fi
	# shellcheck disable=SC2207 # the words hold no spaces
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _provbus provbus-schema provbus-publish provbus-consumer provbus-audit provbus-fleet

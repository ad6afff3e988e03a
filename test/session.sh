#!/usr/bin/env bash
# The README's session in tmux: the local stack served in the left pane (keyguard-local serve),
# the operator command in the right pane with the environment the stack printed.
#
#   test/session.sh           open the session and attach (Ctrl-b d detaches; tmux kill-session -t keyguard ends it)
#   test/session.sh -batch    run it without a terminal, print the right pane's transcript, stop the stack
#
# Needs tmux and bin/versitygw (make tools). test/e2e TestServeSession checks the same session.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
batch=false
[[ "${1:-}" == "-batch" ]] && batch=true
command -v tmux >/dev/null || { echo "session.sh: tmux is not installed" >&2; exit 1; }

work=$(mktemp -d -t keyguard-session-XXXXXX)
mkdir -p "$work/bin"
go build -o "$work/bin/" ./cmd/keyguard ./test/cmd/keyguard-local
env_file=$work/keyguard.env
session=keyguard
tmux kill-session -t "$session" 2>/dev/null || true

cat >"$work/operator.sh" <<'EOF'
#!/usr/bin/env bash
# The right pane: the operator's terminal. KG_WORK and KG_ENV come from session.sh.
export PATH="$KG_WORK/bin:$PATH"
cd "$KG_WORK"
echo "waiting for the stack to print its environment..."
while [ ! -f "$KG_ENV" ]; do sleep 0.2; done
echo '$ source keyguard.env   # the export lines keyguard-local serve printed'
source "$KG_ENV"
run() {
  local line='$' a
  for a in "$@"; do [[ $a == *" "* ]] && a="'$a'"; line+=" $a"; done
  printf '\n%s\n' "$line"
  "$@"
  echo "(exit $?)"
}
run keyguard status
run keyguard backup list archive
run keyguard backup show archive latest
run keyguard backup create archive -type incremental -reason 'before the upgrade' -wait
inc=$(keyguard backup list archive -json | sed -n 's/.*"image_timestamp": "\([0-9]*\)".*/\1/p' | tail -1)
run keyguard backup delete archive "$inc"
run keyguard backup delete archive "$inc" -confirm
run keyguard backup create ledger -wait -timeout 30s
run keyguard backup fetch archive latest -o restore
run keyguard status archive
printf '\nsession done\n'
EOF
chmod +x "$work/operator.sh"

tmux new-session -d -s "$session" -x 200 -y 50 \
  "KEYGUARD_VERSITYGW='$root/bin/versitygw' '$work/bin/keyguard-local' serve -env-file '$env_file' -tick 10s -log warn; read -r -p 'stack stopped; press enter'"
tmux split-window -h -t "$session" "KG_WORK='$work' KG_ENV='$env_file' '$work/operator.sh'; exec bash"

if ! $batch; then
  exec tmux attach -t "$session"
fi
for _ in $(seq 1 600); do
  if tmux capture-pane -p -t "$session.1" -S - | grep -q "session done"; then break; fi
  sleep 0.5
done
echo "== terminal 1: keyguard-local serve"
tmux capture-pane -p -J -t "$session.0" -S - | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
echo "== terminal 2: the operator"
tmux capture-pane -p -J -t "$session.1" -S - | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
tmux send-keys -t "$session.0" C-c
sleep 2
tmux kill-session -t "$session" 2>/dev/null || true
rm -rf "$work"

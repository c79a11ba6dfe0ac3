#!/bin/sh
# Puts `kvh` on PATH from this clone: finds Deno 2.9.6 (KVH_DENO, `deno` on PATH, the clone's
# .tools/) or installs it from npm into .tools/ as .ci/run does, fetches the npm packages of
# deno.lock, and writes $DENO_INSTALL_ROOT/bin/kvh (default ~/.deno/bin/kvh): a wrapper that
# execs deploy/bin/kvh of this clone, so `git pull` updates kvh without reinstalling.
set -eu
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
want="2.9.6"
is_wanted() {
  [ -n "$1" ] && "$1" --version 2>/dev/null | head -n 1 | grep -q "^deno $want "
}
deno="${KVH_DENO:-}"
if ! is_wanted "$deno"; then
  deno=$(command -v deno || true)
fi
if ! is_wanted "$deno"; then
  deno="$root/.tools/node_modules/.bin/deno"
  if ! is_wanted "$deno"; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "kvh install: neither Deno $want nor npm found: install Node.js (npm) or Deno $want" >&2
      exit 1
    fi
    npm install --prefix "$root/.tools" --no-audit --no-fund --loglevel=error "deno@$want"
  fi
fi
# The npm packages deno.lock pins, into the clone's node_modules/ (nothing is fetched at run time).
(cd "$root" && "$deno" install --frozen --quiet)

bin="${DENO_INSTALL_ROOT:-$HOME/.deno}/bin"
mkdir -p "$bin"
tmp="$bin/.kvh.$$"
# The clone's path is quoted for the shell, so a path with spaces or quotes still works.
quoted=$(printf '%s\n' "$root/deploy/bin/kvh" | sed "s/'/'\\\\''/g")
{
  echo '#!/bin/sh'
  echo "# Installed by $root/deploy/install.sh: runs that clone's kvh."
  # A Deno given as KVH_DENO is remembered; the clone's copy and PATH are found at each run.
  if [ "$deno" != "$(command -v deno || true)" ] && [ "$deno" != "$root/.tools/node_modules/.bin/deno" ]; then
    printf "[ -n \"\${KVH_DENO:-}\" ] || KVH_DENO='%s'\nexport KVH_DENO\n" "$(printf '%s\n' "$deno" | sed "s/'/'\\\\''/g")"
  fi
  printf "exec '%s' \"\$@\"\n" "$quoted"
} >"$tmp"
chmod 755 "$tmp"
mv "$tmp" "$bin/kvh"
echo "installed $bin/kvh (runs $root)"
case ":$PATH:" in
*":$bin:"*) ;;
*) echo "add $bin to PATH, e.g. echo 'export PATH=\"$bin:\$PATH\"' >> ~/.profile" ;;
esac

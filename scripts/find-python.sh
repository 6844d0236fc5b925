#!/bin/sh
# Print the path of a CPython 3.10 interpreter (lava-nc 0.10.0 / lava-dl 0.6.0 need exactly 3.10).
# Order: $PYTHON, python3.10 / python3 on PATH, pyenv's versions folder, common prefixes.
is310() { [ -x "$1" ] || command -v "$1" >/dev/null 2>&1 || return 1
          "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }
if [ -n "$PYTHON" ]; then
  if is310 "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
  echo "error: PYTHON=$PYTHON is not a working CPython 3.10; point it at one (lava-nc 0.10.0 needs 3.10)" >&2; exit 1
fi
for c in python3.10 python3; do
  if is310 "$c"; then command -v "$c"; exit 0; fi
done
roots="${PYENV_ROOT:-} $HOME/.pyenv"
command -v pyenv >/dev/null 2>&1 && roots="$(pyenv root) $roots"
for r in $roots; do
  for p in "$r"/versions/3.10*/bin/python3.10; do
    if is310 "$p"; then echo "$p"; exit 0; fi
  done
done
for p in /usr/local/bin/python3.10 /usr/bin/python3.10 /opt/python3.10/bin/python3.10; do
  if is310 "$p"; then echo "$p"; exit 0; fi
done
echo "error: no CPython 3.10 found; install one (pyenv install 3.10, or apt install python3.10) or run make PYTHON=/path/to/python3.10" >&2
exit 1

#!/usr/bin/env bash
# Everything a user needs is in the repository: no tracked file may send its reader to the
# development machines' ../shared/ folder (../shared/DATA_FORMAT.md, shared/DESIGN.md, ...),
# and every reference to the user documentation (docs/PAGE.md#anchor in any tracked file, and
# relative links in the tracked Markdown files) must name an existing file and heading.
# Usage: cli_no_outside_references.sh [SPIKEVI] (the binary is not needed). Exit 0 pass,
# 1 fail, 77 skip (not inside a git checkout).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v git >/dev/null || { echo "skip: no git"; exit 77; }
root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null) ||
  { echo "skip: $here is not inside a git checkout"; exit 77; }
cd "$root" || exit 1

self=tests/cli/cli_no_outside_references.sh
# Uses ../shared/reference/prototype on purpose and skips when it is absent.
prototype_check=tests/cli/cli_prototype_crosscheck.sh
# Temporary exceptions, one per line: PATH|TEXT tolerates a hit in PATH on a line containing
# TEXT. These are code comments that their owners are rewriting; delete each entry once its
# line is gone (the test prints a note for entries that no longer match anything).
allowed=(
)
# ../shared anywhere, or shared/... as a path of its own (not e.g. lib/shared/ or shared_ptr).
pattern='\.\./shared|(^|[^[:alnum:]_./-])shared/'

failures=0
declare -A used
files=()
while IFS= read -r -d '' file; do
  [[ -f "$file" && "$file" != "$self" && "$file" != "$prototype_check" ]] && files+=("$file")
done < <(git ls-files -z)

# ---- 1. references outside the repository
while IFS= read -r hit; do
  path=${hit%%:*}
  rest=${hit#*:}
  text=${rest#*:}
  tolerated=0
  for entry in "${allowed[@]}"; do
    if [[ "$path" == "${entry%%|*}" && "$text" == *"${entry#*|}"* ]]; then
      tolerated=1
      used[$entry]=1
    fi
  done
  if ((!tolerated)); then
    echo "FAIL: $hit"
    failures=$((failures + 1))
  fi
done < <(grep -n -I -E "$pattern" -- "${files[@]}")
for entry in "${allowed[@]}"; do
  [[ -n "${used[$entry]:-}" ]] ||
    echo "note: the exception '$entry' matches nothing any more: remove it from $self"
done
((failures)) && echo "-> these lines point outside the repository; point them at docs/ instead"

# ---- 2. references into the documentation resolve
anchors_of() {  # the GitHub anchors of a Markdown file's headings (outside code blocks)
  awk '/^```/ { code = !code; next } !code && /^#+ / { sub(/^#+ +/, ""); print }' "$1" |
    tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'
}
check_target() {  # check_target WHERE TARGET: TARGET is FILE or FILE#ANCHOR from the repo root
  local where=$1 target=$2 file anchor
  file=${target%%#*}
  anchor=${target#"$file"}
  anchor=${anchor#\#}
  file=$(realpath -m --relative-to=. "$file")
  if [[ ! -e "$file" ]]; then
    echo "FAIL: $where: $target: no such file"
    failures=$((failures + 1))
  elif [[ -n "$anchor" && "$file" == *.md ]] && ! anchors_of "$file" | grep -qxF -- "$anchor"; then
    echo "FAIL: $where: $target: no heading with anchor #$anchor in $file"
    failures=$((failures + 1))
  fi
}
while IFS= read -r hit; do  # docs/PAGE.md[#anchor] in any file, relative to the root
  check_target "${hit%%:*}" "${hit#*:}"
done < <(grep -o -I -E '(^|[^[:alnum:]_./-])docs/[[:alnum:]_./-]+\.md(#[[:alnum:]_-]+)?' \
           -- "${files[@]}" | sed -E 's/:[^d]*docs\//:docs\//')
for file in "${files[@]}"; do  # [text](relative/link) in Markdown, relative to the file
  [[ "$file" == *.md ]] || continue
  dir=$(dirname "$file")
  while IFS= read -r link; do
    case "$link" in http://* | https://* | mailto:*) continue ;; esac
    if [[ "$link" == \#* ]]; then check_target "$file" "$file$link"; else check_target "$file" "$dir/$link"; fi
  done < <(grep -o -E '\]\([^) ]+\)' "$file" | sed -E 's/^\]\(//; s/\)$//')
done

if ((failures)); then
  echo "FAIL: $failures problem(s)"
  exit 1
fi
echo "ok: no tracked file points outside the repository; every docs reference resolves"

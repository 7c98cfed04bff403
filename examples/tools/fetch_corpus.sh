#!/usr/bin/env bash
# Fetches a real prose corpus for private RAG quality runs: the Linux kernel's Documentation/
# tree as Debian's `linux-doc-<version>` package installs it (falling back to the man pages of
# `manpages` and `manpages-dev` when that package cannot be downloaded), unpacked as text files
# that `--docs DIR` of the examples reads:
#
#   examples/tools/fetch_corpus.sh                       # → target/corpus/linux-doc
#   cargo run --release -p veil-examples --example rag_recall -- --docs target/corpus/linux-doc
#   cargo run --release -p veil-examples --example private_rag -- --docs target/corpus/linux-doc
#
# Size (linux-doc-6.1 6.1.170-3, Debian 12): 5,325 files, 26.7 MB of text; 47,396 chunks at the
# examples' default 1000-byte chunks, 113,676 at `rag_recall --chunk-bytes 400`. The man pages
# add 1,100 pages, 8.1 MB (11,168 chunks at 1000 bytes).
#
# Options:
#   --out DIR          output folder (default: <repo>/target/corpus/<source>); must be outside
#                      the repository's tracked tree (under target/ or elsewhere)
#   --source SRC       linux-doc (default), manpages, or all (both, in sub-folders)
#   --translations     keep Documentation/translations/ (non-English; skipped by default, the
#                      bundled embedder is English WordPiece)
#   --force            replace an existing output folder
#
# What it writes: reStructuredText (*.rst) becomes Markdown-ish *.md — section titles (a line
# underlined, optionally overlined, with one repeated punctuation character) become ATX
# headings whose level follows the order in which each adornment style first appears, as in
# docutils — so chunks carry their heading trail; other lines are kept, except lone transition
# lines, and lines a Markdown reader would take for a heading or a code fence are indented by
# four spaces. Plain *.txt files and the ABI/ descriptions (no extension) become *.txt. Man
# pages are rendered with groff to plain text (*.txt). Downloads are cached next to the output
# (<out>/../.debs); nothing is written into the repository's tracked files.
#
# Needs: apt-get (download only, no root), dpkg-deb, gzip, awk; groff for man pages.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=""
source="linux-doc"
translations=0
force=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out=${2:?--out needs a folder}; shift 2 ;;
        --source) source=${2:?--source needs linux-doc, manpages or all}; shift 2 ;;
        --translations) translations=1; shift ;;
        --force) force=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "fetch_corpus: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
case "$source" in
    linux-doc|manpages|all) ;;
    *) echo "fetch_corpus: --source must be linux-doc, manpages or all" >&2; exit 2 ;;
esac
[[ -n "$out" ]] || out="$repo/target/corpus/$source"
out=$(realpath -m -- "$out")
case "$out/" in
    "$repo/target/"*) ;;
    "$repo/"*) echo "fetch_corpus: $out is inside the repository; use target/ or a folder outside it" >&2
               exit 2 ;;
esac
mkdir -p "$out"
if [[ -n "$(ls -A "$out")" ]]; then
    if [[ $force -eq 1 ]]; then
        find "$out" -mindepth 1 -delete
    else
        echo "fetch_corpus: $out is not empty (use --force to replace it)" >&2
        exit 2
    fi
fi
cache=$(dirname "$out")/.debs
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/veil-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT

log() { printf 'fetch_corpus: %s\n' "$*" >&2; }

# Downloads the newest downloadable version of package $1 into the cache; prints the .deb path.
# (The candidate can 404 when the local package lists are older than the mirror, so every
# version apt knows is tried, newest first.)
download() {
    local pkg=$1 deb version
    deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n 1)
    if [[ -n "$deb" ]]; then
        log "using cached $(basename "$deb")"
        printf '%s\n' "$deb"
        return 0
    fi
    for version in $(apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -Vru); do
        if (cd "$cache" && apt-get download -q "$pkg=$version" >/dev/null 2>&1); then
            deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n 1)
            log "downloaded $(basename "$deb")"
            printf '%s\n' "$deb"
            return 0
        fi
        log "$pkg=$version: download failed, trying an older version"
    done
    return 1
}

# The linux-doc-<version> package the `linux-doc` meta-package points at (else the newest one).
linux_doc_package() {
    local pkg
    pkg=$(apt-cache depends linux-doc 2>/dev/null | awk '/Depends: linux-doc-[0-9]/ {print $2; exit}')
    if [[ -z "$pkg" ]]; then
        pkg=$(apt-cache pkgnames linux-doc- 2>/dev/null | grep -E '^linux-doc-[0-9.]+$' | sort -V | tail -n 1 || true)
    fi
    [[ -n "$pkg" ]] && printf '%s\n' "$pkg"
}

# reStructuredText → Markdown-ish text (see the header). Reads stdin, writes stdout.
rst_to_md() {
    awk '
    function adornment(s,   c, i) {
        sub(/[ \t]+$/, "", s)
        if (length(s) < 3) return ""
        c = substr(s, 1, 1)
        if (index("=-`:\047\"~^_*+#<>.", c) == 0) return ""
        for (i = 2; i <= length(s); i++) if (substr(s, i, 1) != c) return ""
        return c
    }
    function blank(s) { return s ~ /^[ \t]*$/ }
    function heading(style, title,   lvl, h) {
        if (!(style in level)) level[style] = ++styles
        lvl = level[style]; if (lvl > 6) lvl = 6
        gsub(/^[ \t]+|[ \t]+$/, "", title)
        h = "######"
        print ""; print substr(h, 1, lvl) " " title; print ""
    }
    function body(s,   t) {
        t = s; sub(/^ {0,3}/, "", t)
        if (t ~ /^#/ || t ~ /^```/ || t ~ /^~~~/) s = "    " s
        print s
    }
    { line[NR] = $0 }
    END {
        n = NR; i = 1
        while (i <= n) {
            c = adornment(line[i])
            # Overlined title: adornment, text, the same adornment.
            if (c != "" && i + 2 <= n && !blank(line[i + 1]) && adornment(line[i + 2]) == c \
                && adornment(line[i + 1]) == "") {
                heading("o" c, line[i + 1]); i += 3; continue
            }
            # Underlined title: text after a blank line (or at the start), then an adornment
            # at least about as long as the text.
            if (c == "" && !blank(line[i]) && i + 1 <= n && (i == 1 || blank(line[i - 1]))) {
                u = adornment(line[i + 1]); t = line[i]; gsub(/^[ \t]+|[ \t]+$/, "", t)
                if (u != "" && line[i] !~ /^[ \t]/ && length(line[i + 1]) + 2 >= length(t)) {
                    heading("u" u, t); i += 2; continue
                }
            }
            # A lone adornment line is a transition: dropped.
            if (c != "" && (i == 1 || blank(line[i - 1])) && (i == n || blank(line[i + 1]))) {
                i++; continue
            }
            body(line[i]); i++
        }
    }'
}

# Unpacks linux-doc's Documentation/ into $1.
fetch_linux_doc() {
    local dest=$1 pkg deb root files
    pkg=$(linux_doc_package) || { log "no linux-doc package known to apt"; return 1; }
    deb=$(download "$pkg") || { log "could not download $pkg"; return 1; }
    dpkg-deb -x "$deb" "$work/linux-doc"
    root=$(find "$work/linux-doc/usr/share/doc" -mindepth 2 -maxdepth 2 -type d -name Documentation | head -n 1)
    [[ -n "$root" ]] || { log "$pkg has no Documentation/ folder"; return 1; }
    mkdir -p "$dest"
    files=0
    while IFS= read -r -d '' f; do
        rel=${f#"$root"/}
        [[ $translations -eq 1 || $rel != translations/* ]] || continue
        plain=${rel%.gz}
        case "$plain" in
            *.rst) target="$dest/${plain%.rst}.md"; conv=rst_to_md ;;
            *.txt) target="$dest/$plain"; conv=cat ;;
            ABI/*) [[ $plain == *.* ]] && continue
                   target="$dest/$plain.txt"; conv=cat ;;
            *) continue ;;
        esac
        mkdir -p "$(dirname "$target")"
        if [[ $f == *.gz ]]; then gzip -dc "$f"; else cat "$f"; fi | $conv > "$target"
        files=$((files + 1))
        if (( files % 500 == 0 )); then log "linux-doc: $files files"; fi
    done < <(find "$root" -type f -print0 | sort -z)
    log "linux-doc: $files text files from $pkg into $dest"
}

# Renders the man pages of manpages and manpages-dev into $1.
fetch_manpages() {
    local dest=$1 pkg deb files=0 f rel target
    command -v groff >/dev/null || { log "groff is needed to render man pages"; return 1; }
    for pkg in manpages manpages-dev; do
        deb=$(download "$pkg") || { log "could not download $pkg"; return 1; }
        dpkg-deb -x "$deb" "$work/man"
    done
    mkdir -p "$dest"
    while IFS= read -r -d '' f; do
        rel=${f#"$work/man/usr/share/man/"}
        # A page that only sources another (`.so man3/x.3`) repeats that page: skipped.
        if gzip -dc "$f" | head -n 3 | grep -q '^\.so '; then continue; fi
        target="$dest/${rel%.gz}.txt"
        mkdir -p "$(dirname "$target")"
        gzip -dc "$f" | MANWIDTH=80 groff -t -man -rHY=0 -dAD=l -Tutf8 -P-cbou 2>/dev/null \
            | awk 'BEGIN { blank = 0 } /^[ \t]*$/ { if (!blank) print ""; blank = 1; next } { blank = 0; print }' \
            > "$target"
        files=$((files + 1))
        if (( files % 500 == 0 )); then log "manpages: $files pages"; fi
    done < <(find "$work/man/usr/share/man" -path '*/man[0-9]*' -name '*.gz' -type f -print0 | sort -z)
    log "manpages: $files pages into $dest"
}

case "$source" in
    linux-doc)
        if ! fetch_linux_doc "$out"; then
            log "falling back to the man pages"
            fetch_manpages "$out"
        fi ;;
    manpages) fetch_manpages "$out" ;;
    all)
        fetch_linux_doc "$out/linux-doc"
        fetch_manpages "$out/manpages" ;;
esac
count=$(find "$out" -type f | wc -l)
bytes=$(find "$out" -type f -print0 | du -cb --files0-from=- | tail -n 1 | cut -f1)
log "done: $count files, $bytes bytes in $out"
printf '%s\n' "$out"

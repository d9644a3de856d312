#!/bin/sh
# md2man.sh: builds a man page from markdown, so the man pages and docs/
# share one source (used by cmake/manpages.cmake).
#
# Usage: md2man.sh CMARK_GFM PAGE.md NAME SECTION VERSION OUT
#
# PAGE.md is a page's preamble (NAME, SYNOPSIS, ...). A line in it of the
# exact form
#     <!-- include PATH -->
#     <!-- include PATH until PREFIX -->
# is replaced by the file PATH (relative to PAGE.md's directory), so the
# body comes from the docs themselves; with "until", only its lines before
# the first one starting with PREFIX (to leave out the parts written for
# developers; it is an error if there is none). The result goes through
# `cmark-gfm -e table -t man`, then through a filter fixing what its man
# writer gets wrong for man(1) and groff:
#   - tables: it writes centred columns without widths, so any table with
#     long cells is wider than the page ("table wider than line width");
#     here columns are left-aligned, the header is bold and ruled, and the
#     widest columns become wrapped text blocks (T{ T}) with widths that
#     fit 70 columns (each at least as wide as its longest word), set
#     ragged-right in a paragraph of their own.
#   - '@' in a cell would split it (tables use tab(@)): every '@' of the
#     input is swapped for a placeholder before cmark-gfm and written as
#     \(at after it.
#   - lines of code blocks starting with '.' or a quote would be read as
#     requests: they get a \& in front.
#   - a hard line break comes out as "text.PD 0": the request is moved to
#     its own line.
#   - links to other docs ([text](api.md)) keep only their text (done on
#     the markdown, outside fenced code).
#   - headings: ".SH" and its text on the next line are joined (what
#     lexgrog/mandb expect for NAME); section headings are upper-cased.
# Then a .TH line (NAME, SECTION, date, "baton VERSION") is prepended. The
# date is $SOURCE_DATE_EPOCH's if set (reproducible builds), else today's.
set -eu
cmark=$1
page=$2
name=$3
section=$4
version=$5
out=$6

at=BtManAtSign7q
case $section in
  1) volume="User Commands" ;;
  5) volume="File Formats Manual" ;;
  8) volume="System Administration" ;;
  *) volume="baton" ;;
esac
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
else
  date=$(date -u +%Y-%m-%d)
fi
dir=$(dirname "$page")
tmp="$out.tmp"
trap 'rm -f "$tmp" "$tmp.md" "$tmp.man"' EXIT

# 1. The markdown: the preamble with its includes, '@' swapped.
awk -v dir="$dir" -v at="$at" '
  # Links to other docs ([text](api.md#errors)) keep only their text: a
  # man page cannot follow them, and cmark-gfm would print "text (api.md)".
  # Links with a scheme (https:, man:) stay. Not inside fenced code.
  function unlink(line,   out, m, text) {
    out = ""
    while (match(line, /\[[^]]*\]\([^):]*\)/)) {
      m = substr(line, RSTART, RLENGTH)
      text = substr(m, 2, index(m, "](") - 2)
      out = out substr(line, 1, RSTART - 1) text
      line = substr(line, RSTART + RLENGTH)
    }
    return out line
  }
  function emit(line) {
    if (line ~ /^ {0,3}(```|~~~)/) fenced = !fenced
    else if (!fenced) line = unlink(line)
    gsub(/@/, at, line)
    print line
  }
  /^<!-- include [^ ]+( until .+)? -->$/ {
    path = $3
    if (path !~ /^\//) path = dir "/" path
    until = ""
    if ($4 == "until") { until = $0; sub(/^.* until /, "", until); sub(/ -->$/, "", until) }
    n = 0; found = (until == "")
    while ((rc = (getline l < path)) > 0) {
      if (until != "" && index(l, until) == 1) { found = 1; break }
      emit(l); n++
    }
    if (rc < 0 || n == 0) { print "md2man: cannot read " path > "/dev/stderr"; exit 1 }
    if (!found) { print "md2man: " path " has no line starting with \"" until "\"" > "/dev/stderr"; exit 1 }
    close(path)
    print ""
    next
  }
  { emit($0) }
' "$page" > "$tmp.md"

# 2. cmark-gfm (not in a pipe, so its failure stops the script).
"$cmark" -e table -t man "$tmp.md" > "$tmp.man"

# 3. The filter, after a .TH line.
{
  printf '.\\" Generated from %s by docs/man/md2man.sh (cmark-gfm); edit the markdown.\n' \
    "$(basename "$page")"
  printf '.TH "%s" "%s" "%s" "baton %s" "%s"\n' \
    "$(echo "$name" | tr '[:lower:]' '[:upper:]')" "$section" "$date" "$version" "$volume"
  awk -v at="$at" -v sq="'" '
    # Visible width of a troff text (escapes count as what they print).
    function vlen(s) {
      gsub(/\\f\[[^]]*\]/, "", s); gsub(/\\f[A-Z1-4P]/, "", s)
      gsub(/\\&/, "", s); gsub(/\\:/, "", s); gsub(/\\\[[^]]*\]/, "x", s); gsub(/\\\(../, "x", s)
      gsub(/\\./, "x", s)
      return length(s)
    }
    # Upper case, except inside escapes (\f[C], \(em, \[bu], \-).
    function upcase(s,   out) {
      out = ""
      while (match(s, /\\(f\[[^]]*\]|\(..|\[[^]]*\]|.)/)) {
        out = out toupper(substr(s, 1, RSTART - 1)) substr(s, RSTART, RLENGTH)
        s = substr(s, RSTART + RLENGTH)
      }
      return out toupper(s)
    }
    function fix_at(s) { gsub(at, "\\(at", s); return s }
    # Visible width of the longest word of a troff text.
    function vword(s,   n, k, m, words) {
      gsub(/\\:/, " ", s)
      n = split(s, words, / +/); m = 0
      for (k = 1; k <= n; k++) if (vlen(words[k]) > m) m = vlen(words[k])
      return m
    }
    # The text with break points (\:) after "/ , : =" (and "_" when brk_us
    # is set) in words longer than 16 columns, so paths and code in narrow
    # text blocks can wrap.
    function breakable(s,   n, k, i, ch, t, out, words) {
      n = split(s, words, / /); out = ""
      for (k = 1; k <= n; k++) {
        t = words[k]
        if (vlen(t) > 16) {
          t = ""
          for (i = 1; i <= length(words[k]); i++) {
            ch = substr(words[k], i, 1); t = t ch
            if (ch == "/" || ch == "," || ch == ":" || ch == "=" || (brk_us && ch == "_"))
              t = t "\\:"
          }
        }
        out = out (k > 1 ? " " : "") t
      }
      return out
    }
    # Writes the table gathered in rows[1..nrows] (header first).
    function flush_table(   i, j, n, c, w, maxw, wide, ww, h, height, total, avail, sumwide, fmt, line, cell, pass) {
      ncols = 0
      for (i = 1; i <= nrows; i++) {
        n = split(rows[i], cells, "@")
        if (n > ncols) ncols = n
        for (j = 1; j <= n; j++) {
          c[i, j] = cells[j]
          w = vlen(cells[j])
          if (w > maxw[j]) maxw[j] = w
        }
      }
      # Mark the widest columns as wrapped until the table fits; break
      # identifiers at "_" only if it does not fit otherwise.
      limit = 70
      for (pass = 0; pass < 2; pass++) {
        brk_us = pass
        for (j = 1; j <= ncols; j++) { minw[j] = 0; wide[j] = 0 }
        for (i = 1; i <= nrows; i++)
          for (j = 1; j <= ncols; j++) {
            w = vword(breakable(c[i, j]))
            if (w > minw[j]) minw[j] = w
          }
        for (;;) {
          total = 3 * (ncols - 1)
          for (j = 1; j <= ncols; j++) total += wide[j] ? minw[j] : maxw[j]
          if (total <= limit) break
          best = 0
          for (j = 1; j <= ncols; j++)
            if (!wide[j] && maxw[j] > minw[j] && (best == 0 || maxw[j] > maxw[best])) best = j
          if (best == 0) break
          wide[best] = 1
        }
        if (total <= limit) break
      }
      if (pass == 2) brk_us = 1
      # Wrapped columns get their longest word, then the room left over in
      # proportion to how much more they would take.
      avail = limit - 3 * (ncols - 1); sumwide = 0
      for (j = 1; j <= ncols; j++)
        if (wide[j]) { avail -= minw[j]; sumwide += maxw[j] - minw[j] } else avail -= maxw[j]
      if (avail < 0) avail = 0
      for (j = 1; j <= ncols; j++)
        if (wide[j]) {
          ww[j] = minw[j] + (sumwide > 0 ? int(avail * (maxw[j] - minw[j]) / sumwide) : 0)
          if (ww[j] > maxw[j]) ww[j] = maxw[j]
        }
      # A table is a paragraph of its own (cmark-gfm keeps the indent of
      # a code block before it), set ragged-right: justified text blocks
      # of a few words warn "cannot adjust line".
      # The .ne asks for the height of the table (a generous estimate): in
      # the continuous rendering of man(1) (-rcR=1) the page grows only on
      # request, and without it tbl warns "table text block will not fit
      # on one page" when a text block comes near the current end.
      height = 2
      for (i = 1; i <= nrows; i++) {
        h = 1
        for (j = 1; j <= ncols; j++)
          if (wide[j] && int(vlen(c[i, j]) * 1.5 / ww[j]) + 1 > h) h = int(vlen(c[i, j]) * 1.5 / ww[j]) + 1
        height += h
      }
      print ".PP"
      print ".na"
      print ".ne " height "v"
      print ".TS"
      print "tab(@);"
      for (r = 0; r < 2; r++) {
        fmt = ""
        for (j = 1; j <= ncols; j++) {
          cell = (r == 0) ? "lb" : "l"
          if (wide[j]) cell = cell "w(" ww[j] "n)"
          fmt = fmt (j > 1 ? " " : "") cell
        }
        print fmt (r == 1 ? "." : "")
      }
      for (i = 1; i <= nrows; i++) {
        line = ""
        for (j = 1; j <= ncols; j++) {
          cell = c[i, j]
          if (wide[j] && vlen(cell) > 0) cell = "T{\n\\&" fix_at(breakable(cell)) "\nT}"
          else cell = fix_at(cell)
          line = line (j > 1 ? "@" : "") cell
        }
        # A row starting with "." or a quote would be a request.
        if (substr(line, 1, 1) == "." || substr(line, 1, 1) == sq) line = "\\&" line
        print line
        if (i == 1) print "_"
      }
      print ".TE"
      print ".ad"
      for (i = 1; i <= nrows; i++) { delete rows[i]; for (j = 1; j <= ncols; j++) delete c[i, j] }
      for (j = 1; j <= ncols; j++) { delete maxw[j]; delete minw[j]; delete wide[j] }
      nrows = 0
    }
    # Table: .TS, tab(@);, the format line, rows, .TE
    state == "ts" { state = "tsfmt"; next }            # tab(@);
    state == "tsfmt" { state = "tsrows"; next }         # cmark-gfm format line
    state == "tsrows" {
      if ($0 == ".TE") { flush_table(); state = ""; next }
      rows[++nrows] = $0; next
    }
    $0 == ".TS" { state = "ts"; nrows = 0; next }
    # Code blocks: .nf, \f[C], lines, \f[], .fi
    $0 == ".nf" { incode = 1; print; next }
    $0 == ".fi" { incode = 0; print; next }
    incode && (substr($0, 1, 1) == "." || substr($0, 1, 1) == sq) { print "\\&" fix_at($0); next }
    incode { print fix_at($0); next }
    # Headings.
    ($0 == ".SH" || $0 == ".SS") { head = $0; next }
    head != "" {
      t = fix_at($0)
      if (head == ".SH") t = upcase(t)
      if (t ~ /"/) { print head; print t } else print head " \"" t "\""
      head = ""; next
    }
    # A hard line break glued to the text before it.
    /[^ ]\.PD 0$/ && !/^\./ { sub(/\.PD 0$/, ""); print fix_at($0); print ".PD 0"; next }
    { print fix_at($0) }
  ' "$tmp.man"
} > "$tmp"
mv "$tmp" "$out"

# aggregate.awk: turns bench/run.sh's raw values into figures.
#
#   awk -F'\t' -v out=md|json|dat [-v dir=DIR] -f aggregate.awk machine.tsv cases.tsv raw.tsv
#
# machine.tsv: key<TAB>value lines about the machine and the run.
# cases.tsv:   case, workload, args, metric, better (lower|higher), target (- for
#              none), what.
# raw.tsv:     R case impl value | P case impl peak_rss_kb | F case impl reason.
# Each figure is the median of a case's measured runs on one implementation,
# with their min and max; peak RSS is the largest any of its processes saw.
# "×r" is baton's advantage: the peer's median over baton's for lower-is-
# better metrics, baton's over the peer's for higher-is-better ones, so r > 1
# always means baton did better. Portable awk (mawk, gawk, busybox): no
# asort, no ARGIND.

FNR == 1 { file++ }

file == 1 { mkeys[++nm] = $1; mval[nm] = $2; next }

file == 2 {
    ncase++
    cname[ncase] = $1; cwork[$1] = $2; cargs[$1] = $3; cmetric[$1] = $4
    cbetter[$1] = $5; ctarget[$1] = ($6 == "-") ? "" : $6; cwhat[$1] = $7
    next
}

file == 3 {
    key = $2 SUBSEP $3
    used[$3] = 1
    if ($1 == "R" && $4 != "") { vals[key, ++n[key]] = $4 + 0 }
    else if ($1 == "P") { if (!(key in peak) || $4 + 0 > peak[key]) peak[key] = $4 + 0 }
    else if ($1 == "F") { failed[key] = $4 }
}

# Sorts vals[key, 1..k] into s[1..k] (insertion sort: k is small).
function sorted(key, k,    i, j, v) {
    for (i = 1; i <= k; i++) {
        v = vals[key, i]
        for (j = i - 1; j >= 1 && s[j] > v; j--) s[j + 1] = s[j]
        s[j + 1] = v
    }
}

function stats(key,    k) {
    k = n[key]
    if (k == 0) return 0
    sorted(key, k)
    smin = s[1]; smax = s[k]
    smed = (k % 2) ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
    return k
}

function fmt(v) {
    if (v < 0) v = -v
    if (v >= 100) return sprintf("%.0f", v)
    if (v >= 10) return sprintf("%.1f", v)
    if (v >= 0.1) return sprintf("%.2f", v)
    return sprintf("%.3f", v)
}

# baton's advantage over a peer median pv, given baton's median bv.
function ratio(c, bv, pv) {
    if (bv <= 0 || pv <= 0) return ""
    return cbetter[c] == "higher" ? bv / pv : pv / bv
}

function target_text(c) {
    if (ctarget[c] == "") return ""
    return (cbetter[c] == "higher" ? "≥ " : "≤ ") ctarget[c]
}

function unit(m) {
    if (m == "ns_per_msg") return "ns/msg"
    if (m == "ns_per_actor") return "ns/actor"
    if (m == "ns_per_hop") return "ns/hop"
    if (m == "ns_per_meeting") return "ns/meeting"
    if (m == "ns_per_roundtrip") return "ns/round trip"
    if (m == "mmsg_per_s") return "M msgs/s"
    if (m == "bytes_per_actor") return "bytes/actor"
    if (m == "cpu_percent") return "CPU %"
    if (m == "req_per_s") return "req/s"
    if (m == "cycles_per_s") return "cycles/s"
    if (m ~ /_us$/) return "µs"
    return m
}

function jstr(v) {
    gsub(/\\/, "\\\\", v); gsub(/"/, "\\\"", v)
    return "\"" v "\""
}

END {
    nimpl = split("baton floor-ring floor-mpsc floor-1t go erlang caf bare-mhd", order, " ")
    ncol = 0
    for (i = 1; i <= nimpl; i++) if (order[i] in used) cols[++ncol] = order[i]
    if (out == "md") md()
    else if (out == "json") json()
    else if (out == "dat") dat()
}

function md(    i, c, j, impl, key, b, bk, cell, r, met, line) {
    print "# baton benchmark results"
    print ""
    for (i = 1; i <= nm; i++) print "- " mkeys[i] ": " mval[i]
    print ""
    print "Each cell: the median of the measured runs; `(×r)` is baton's advantage over that"
    print "implementation (r > 1: baton is better by that factor; r < 1: it is worse)."
    print "The floors are bare CK queues between plain threads, not actor runtimes (see bench/README.md)."
    if ("bare-mhd" in used)
        print "bare-mhd is a bare libmicrohttpd server with the service's MHD flags (bench/service/bare_mhd.c)."
    print ""
    line = "| case | unit | target | target met |"
    for (j = 1; j <= ncol; j++) line = line " " cols[j] " |"
    print line
    line = "|---|---|---|---|"
    for (j = 1; j <= ncol; j++) line = line "---:|"
    print line
    for (i = 1; i <= ncase; i++) {
        c = cname[i]
        bk = c SUBSEP "baton"
        b = stats(bk) ? smed : -1
        met = ""
        if (b >= 0 && ctarget[c] != "")
            met = ((cbetter[c] == "higher") ? (b >= ctarget[c] + 0) : (b <= ctarget[c] + 0)) ? "yes" : "**no**"
        line = "| " c " | " unit(cmetric[c]) " | " target_text(c) " | " met " |"
        for (j = 1; j <= ncol; j++) {
            impl = cols[j]; key = c SUBSEP impl
            if (stats(key)) {
                cell = fmt(smed)
                if (impl != "baton" && b > 0) {
                    r = ratio(c, b, smed)
                    if (r != "") cell = cell " (×" fmt(r) ")"
                }
            } else if (key in failed) cell = "failed"
            else cell = "–"
            line = line " " cell " |"
        }
        print line
    }
    print ""
    print "## Details"
    print ""
    print "| case | implementation | median | min | max | runs | peak RSS (MiB) |"
    print "|---|---|---:|---:|---:|---:|---:|"
    for (i = 1; i <= ncase; i++) {
        c = cname[i]
        for (j = 1; j <= ncol; j++) {
            impl = cols[j]; key = c SUBSEP impl
            if (stats(key))
                printf "| %s | %s | %s | %s | %s | %d | %s |\n", c, impl, fmt(smed), fmt(smin),
                    fmt(smax), n[key], (key in peak) ? sprintf("%.1f", peak[key] / 1024) : "–"
            else if (key in failed)
                printf "| %s | %s | %s | | | 0 | |\n", c, impl, failed[key]
        }
    }
    print ""
    print "Cases:"
    print ""
    for (i = 1; i <= ncase; i++)
        print "- `" cname[i] "`: " cwhat[cname[i]] " (`" cwork[cname[i]] " " cargs[cname[i]] "`, " unit(cmetric[cname[i]]) ", " cbetter[cname[i]] " is better)"
}

function json(    i, c, j, impl, key, first, b) {
    print "{"
    printf "  \"machine\": {"
    for (i = 1; i <= nm; i++) printf "%s\n    %s: %s", (i > 1 ? "," : ""), jstr(mkeys[i]), jstr(mval[i])
    print "\n  },"
    print "  \"results\": ["
    first = 1
    for (i = 1; i <= ncase; i++) {
        c = cname[i]
        b = stats(c SUBSEP "baton") ? smed : -1
        for (j = 1; j <= ncol; j++) {
            impl = cols[j]; key = c SUBSEP impl
            if (!stats(key) && !(key in failed)) continue
            printf "%s    {\"case\": %s, \"workload\": %s, \"args\": %s, \"metric\": %s, \"better\": %s, ",
                (first ? "" : ",\n"), jstr(c), jstr(cwork[c]), jstr(cargs[c]), jstr(cmetric[c]), jstr(cbetter[c])
            first = 0
            printf "\"target\": %s, \"impl\": %s, ", (ctarget[c] == "" ? "null" : ctarget[c] + 0), jstr(impl)
            if (n[key] > 0) {
                printf "\"runs\": %d, \"median\": %.6g, \"min\": %.6g, \"max\": %.6g, ", n[key], smed, smin, smax
                printf "\"baton_advantage\": %s, ", (impl != "baton" && b > 0) ? sprintf("%.4g", ratio(c, b, smed)) : "null"
            } else
                printf "\"runs\": 0, \"failed\": %s, ", jstr(failed[key])
            printf "\"peak_rss_kb\": %s}", (key in peak) ? peak[key] : "null"
        }
    }
    print "\n  ]"
    print "}"
}

# One data file per case for the chart: impl, median, min, max, colour index.
# Cases without any value are left out of cases.list.
function dat(    i, c, j, impl, key, f, list, titles, any) {
    list = dir "/cases.list"
    printf "" > list
    for (i = 1; i <= ncase; i++) {
        c = cname[i]
        f = dir "/" c ".dat"
        any = 0
        for (j = 1; j <= nimpl; j++) {
            impl = order[j]; key = c SUBSEP impl
            if (stats(key)) {
                printf "%s\t%.6g\t%.6g\t%.6g\t%d\n", impl, smed, smin, smax, j > f
                any = 1
            }
        }
        close(f)
        if (!any) continue
        printf "%s\n", c > list
        titles = dir "/" c ".title"
        printf "%s (%s, %s is better)\n", c, unit(cmetric[c]), cbetter[c] > titles
        close(titles)
    }
    close(list)
}

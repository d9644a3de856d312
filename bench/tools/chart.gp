# chart.gp: the chart of bench/run.sh: one panel per case, a bar per
# implementation at its median, with a min..max bar. Run in the folder of
# aggregate.awk's data files, with outfile set:
#   gnuplot -e "outfile='bench.png'" chart.gp
cases = system("cat cases.list")
n = words(cases)
cols = 3
rows = int((n + cols - 1) / cols)
set terminal pngcairo size 1500, 300 * rows font "sans,9"
set output outfile
set multiplot layout rows, cols title "baton benchmarks (bar: median; whisker: min..max; lower or higher is better as titled)"
set style fill solid 0.75 border -1
set boxwidth 0.6
unset key
set grid ytics
set yrange [0:*]
set offsets 0.5, 0.5, 0, 0
set xtics nomirror scale 0 noenhanced font ",8"
# One colour per implementation, in aggregate.awk's order.
set linetype 1 lc rgb "#d62728"
set linetype 2 lc rgb "#7f7f7f"
set linetype 3 lc rgb "#a0a0a0"
set linetype 4 lc rgb "#c7c7c7"
set linetype 5 lc rgb "#1f77b4"
set linetype 6 lc rgb "#9467bd"
set linetype 7 lc rgb "#2ca02c"
do for [i = 1:n] {
    c = word(cases, i)
    set title system(sprintf("cat '%s.title'", c)) noenhanced
    f = sprintf("%s.dat", c)
    plot f using 0:2:5:xtic(1) with boxes lc variable, \
         f using 0:2:3:4 with yerrorbars lc rgb "black" pt -1, \
         f using 0:4:($2 >= 100 ? sprintf("%.0f", $2) : sprintf("%.3g", $2)) with labels offset 0, 0.6 font ",8"
}
unset multiplot

set terminal pngcairo size 1400,1280 font 'DejaVu Sans,11'
set output '../../../docs/bench-latency.png'
set multiplot layout 4,2 title "Stand-in round latency under memory pressure (cgroup limit 48 MiB, working set 16 MiB, hog +2 MiB/100 ms)\nblue: round latency (left axis); grey: MiB the hog holds (right axis); red: hog OOM-killed; dashed: 50 ms" font ',13'
set logscale y
set yrange [0.1:1000]
set xrange [-1:6.0]
set ytics ('0.1' 0.1, '1' 1, '10' 10, '50' 50, '100' 100, '1000' 1000)
set grid ytics xtics lc rgb '#dddddd'
set key off
set xlabel 'seconds since the hog started'
set ylabel 'round latency (ms)'
set lmargin 10
set rmargin 8
set y2range [0:60]
set y2tics 16 textcolor rgb '#777777'
set y2label 'hog MiB' textcolor rgb '#777777'
set label 1 'cgroup limit' at graph 0.01, second 50 textcolor rgb '#999999' font ',9'
unset arrow
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 48 to graph 1, second 48 nohead dt 3 lc rgb '#bbbbbb'
set title "unpressured (no hog): p99 1.8 ms, max 3.5 ms, 0 major faults, 0 MiB locked"
plot 'latency-baseline.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 2.34,0.1 to 2.34,1000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 48 to graph 1, second 48 nohead dt 3 lc rgb '#bbbbbb'
set title "no locker: p99 71.8 ms, max 354.8 ms, 192 major faults, 0 MiB locked"
plot 'hog-none.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-none.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 0.72,0.1 to 0.72,1000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 48 to graph 1, second 48 nohead dt 3 lc rgb '#bbbbbb'
set title "vmtouch -l: p99 1.6 ms, max 1.7 ms, 0 major faults, 64 MiB locked"
plot 'hog-vmtouch.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-vmtouch.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 0.72,0.1 to 0.72,1000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 48 to graph 1, second 48 nohead dt 3 lc rgb '#bbbbbb'
set title "memlockd: p99 1.6 ms, max 1.7 ms, 0 major faults, 67 MiB locked"
plot 'hog-memlockd.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-memlockd.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 0.72,0.1 to 0.72,1000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 48 to graph 1, second 48 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd whole: p99 1.6 ms, max 1.7 ms, 0 major faults, 67 MiB locked"
plot 'hog-prelockd-whole.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-prelockd-whole.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 0.73,0.1 to 0.73,1000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 48 to graph 1, second 48 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd mapped: p99 1.7 ms, max 1.8 ms, 0 major faults, 67 MiB locked"
plot 'hog-prelockd-mapped.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-prelockd-mapped.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 1.52,0.1 to 1.52,1000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 48 to graph 1, second 48 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd resident (default): p99 1.7 ms, max 1.8 ms, 0 major faults, 19 MiB locked"
plot 'hog-prelockd-resident.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-prelockd-resident.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset multiplot

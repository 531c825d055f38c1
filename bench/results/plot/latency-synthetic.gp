set terminal pngcairo size 1400,1280 font 'DejaVu Sans,11'
set output '/work/main/docs/bench-latency.png'
set multiplot layout 4,2 title "synthetic: round latency under memory pressure (cgroup limit 64 MiB, hog +2 MiB/100 ms)\nblue: round latency (left axis); grey: MiB the hog holds (right axis); red: hog OOM-killed; dashed: 50 ms" font ',13'
set logscale y
set yrange [0.1:10000]
set xrange [-1:6.0]
set ytics ('0.1' 0.1, '1' 1, '10' 10, '50' 50, '100' 100, '1000' 1000, '10000' 10000)
set grid ytics xtics lc rgb '#dddddd'
set key off
set xlabel 'seconds since the hog started'
set ylabel 'round latency (ms)'
set lmargin 10
set rmargin 8
set y2range [0:80]
set y2tics 16 textcolor rgb '#777777'
set y2label 'hog MiB' textcolor rgb '#777777'
set label 1 'cgroup limit' at graph 0.01, second 66 textcolor rgb '#999999' font ',9'
unset arrow
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "unpressured (no hog): p99 1.6 ms, max 1.7 ms, 0 major faults, 0 MiB locked"
plot 'latency-synthetic-baseline.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 3.01,0.1 to 3.01,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "no locker: p99 71.7 ms, max 256.8 ms, 162 major faults, 0 MiB locked"
plot 'hog-synthetic-none.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-synthetic-none.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 0.72,0.1 to 0.72,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "vmtouch -l: p99 1.7 ms, max 2.5 ms, 0 major faults, 80 MiB locked"
plot 'hog-synthetic-vmtouch.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-synthetic-vmtouch.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 0.72,0.1 to 0.72,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "memlockd: p99 1.6 ms, max 2.0 ms, 0 major faults, 80 MiB locked"
plot 'hog-synthetic-memlockd.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-synthetic-memlockd.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 0.72,0.1 to 0.72,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd whole: p99 1.7 ms, max 1.7 ms, 0 major faults, 80 MiB locked"
plot 'hog-synthetic-prelockd-whole.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-synthetic-prelockd-whole.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 0.72,0.1 to 0.72,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd mapped: p99 1.6 ms, max 1.7 ms, 0 major faults, 80 MiB locked"
plot 'hog-synthetic-prelockd-mapped.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-synthetic-prelockd-mapped.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 1.92,0.1 to 1.92,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd (shipped defaults): p99 1.6 ms, max 2.0 ms, 0 major faults, 24 MiB locked"
plot 'hog-synthetic-prelockd-resident.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-synthetic-prelockd-resident.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 1.92,0.1 to 1.92,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd, program started after its last pass: p99 1.7 ms, max 2.5 ms, 0 major faults, 24 MiB locked"
plot 'hog-synthetic-prelockd-late.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-synthetic-prelockd-late.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset multiplot

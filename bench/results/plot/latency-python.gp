set terminal pngcairo size 1400,1280 font 'DejaVu Sans,11'
set output '/work/main/docs/bench-latency-python.png'
set multiplot layout 4,2 title "python: round latency under memory pressure (cgroup limit 64 MiB, hog +2 MiB/100 ms)\nblue: round latency (left axis); grey: MiB the hog holds (right axis); red: hog OOM-killed; dashed: 50 ms" font ',13'
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
set title "unpressured (no hog): p99 7.1 ms, max 7.8 ms, 0 major faults, 0 MiB locked"
plot 'latency-python-baseline.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 2.84,0.1 to 2.84,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "no locker: p99 10.9 ms, max 234.6 ms, 203 major faults, 0 MiB locked"
plot 'hog-python-none.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-python-none.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 2.12,0.1 to 2.12,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "vmtouch -l: p99 7.6 ms, max 15.5 ms, 0 major faults, 13 MiB locked"
plot 'hog-python-vmtouch.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-python-vmtouch.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 2.12,0.1 to 2.12,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "memlockd: p99 8.2 ms, max 14.8 ms, 0 major faults, 13 MiB locked"
plot 'hog-python-memlockd.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-python-memlockd.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 2.14,0.1 to 2.14,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd whole: p99 7.8 ms, max 17.8 ms, 0 major faults, 13 MiB locked"
plot 'hog-python-prelockd-whole.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-python-prelockd-whole.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 2.22,0.1 to 2.22,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd mapped: p99 7.3 ms, max 19.1 ms, 2 major faults, 12 MiB locked"
plot 'hog-python-prelockd-mapped.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-python-prelockd-mapped.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 2.32,0.1 to 2.32,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd (shipped defaults): p99 6.9 ms, max 18.5 ms, 1 major faults, 9 MiB locked"
plot 'hog-python-prelockd-resident.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-python-prelockd-resident.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset arrow
set arrow from 2.32,0.1 to 2.32,10000 nohead lc rgb 'red' lw 2
set arrow from -1,50 to 6.0,50 nohead dt 2 lc rgb '#888888'
set arrow from graph 0, second 64 to graph 1, second 64 nohead dt 3 lc rgb '#bbbbbb'
set title "prelockd, program started after its last pass: p99 7.7 ms, max 20.9 ms, 1 major faults, 9 MiB locked"
plot 'hog-python-prelockd-late.dat' using 1:2 axes x1y2 with steps lw 2 lc rgb '#bbbbbb', 'latency-python-prelockd-late.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb '#1f5fa8'
unset multiplot

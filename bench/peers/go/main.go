// Command bench_go: the Go peer of bench_runtime. Each actor is a goroutine
// whose mailbox is a buffered channel; the workloads, parameters and output
// lines are the same as the C program's (see bench/README.md).
//
//	bench_go [--warmup W] [--runs R] WORKLOAD [ARG...]
//
// Only the standard library is used. GOMAXPROCS is left at its default (the
// number of CPUs), as baton's thread count is.
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// mailbox is the capacity of a goroutine's channel where the workload does
// not fix it. Channels are bounded: a full one blocks its sender.
const mailbox = 1024

type workload struct {
	name, metric string
	full         []uint64
	run          func(a []uint64) float64
}

var workloads = []workload{
	{"pingpong", "ns_per_msg", []uint64{1000000}, pingpong},
	{"counting", "ns_per_msg", []uint64{1000000}, counting},
	{"fanin", "mmsg_per_s", []uint64{4, 10000000}, fanin},
	{"forkjoin", "ns_per_msg", []uint64{60, 10000}, forkjoin},
	{"fjcreate", "ns_per_actor", []uint64{1000000}, fjcreate},
	{"spawn", "ns_per_actor", []uint64{1000000}, spawn},
	{"ring", "ns_per_hop", []uint64{503, 10000000}, ring},
	{"chameneos", "ns_per_meeting", []uint64{100, 200000}, chameneos},
	{"big", "ns_per_msg", []uint64{120, 20000}, big},
	{"idle_bytes", "bytes_per_actor", []uint64{1000000}, idleBytes},
	{"idle_cpu", "cpu_percent", []uint64{1000, 2000}, idleCPU},
	{"ask", "ns_per_roundtrip", []uint64{100000}, ask},
}

func since(t0 time.Time) float64 { return float64(time.Since(t0).Nanoseconds()) }

// compute is the per-message work of Savina's fork-join workloads.
func compute(theta float64) float64 {
	s := math.Sin(theta)
	return s * s
}

func pingpong(a []uint64) float64 {
	n := int(a[0])
	pingCh, pongCh := make(chan int, mailbox), make(chan int, mailbox)
	start, done := make(chan struct{}), make(chan struct{})
	go func() { // ponger
		for v := range pingCh {
			pongCh <- v
		}
	}()
	go func() { // pinger
		<-start
		for i := 0; i < n; i++ {
			pingCh <- i
			<-pongCh
		}
		close(pingCh)
		close(done)
	}()
	t0 := time.Now()
	close(start)
	<-done
	return since(t0) / float64(2*n)
}

// fanIn: p producers send n messages in all to one counter; returns ns.
func fanIn(p, n int) float64 {
	ch := make(chan int, mailbox)
	start, done := make(chan struct{}), make(chan struct{})
	go func() { // counter
		for i := 0; i < n; i++ {
			<-ch
		}
		close(done)
	}()
	for i := 0; i < p; i++ {
		share := n / p
		if i < n%p {
			share++
		}
		go func(share int) {
			<-start
			for j := 0; j < share; j++ {
				ch <- j
			}
		}(share)
	}
	t0 := time.Now()
	close(start)
	<-done
	return since(t0)
}

func counting(a []uint64) float64 { return fanIn(1, int(a[0])) / float64(a[0]) }

func fanin(a []uint64) float64 {
	return float64(a[1]) * 1e3 / fanIn(int(a[0]), int(a[1]))
}

func forkjoin(a []uint64) float64 {
	k, n := int(a[0]), int(a[1])
	var wg sync.WaitGroup
	wg.Add(k)
	chans := make([]chan float64, k)
	sink := make([]float64, k)
	for i := range chans {
		chans[i] = make(chan float64, mailbox)
		go func(i int, ch chan float64) {
			acc := 0.0
			for j := 0; j < n; j++ {
				acc += compute(<-ch)
			}
			sink[i] = acc
			wg.Done()
		}(i, chans[i])
	}
	t0 := time.Now()
	for m := 0; m < n; m++ {
		for i := 0; i < k; i++ {
			chans[i] <- 37.2 + float64(m)*1e-6
		}
	}
	wg.Wait()
	return since(t0) / float64(k*n)
}

func fjcreate(a []uint64) float64 {
	n := int(a[0])
	var wg sync.WaitGroup
	wg.Add(n)
	var bad int64
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ch := make(chan float64, 1)
		go func() {
			if compute(<-ch) < 0 {
				bad++ // never: keeps the computation
			}
			wg.Done()
		}()
		ch <- 37.2
	}
	wg.Wait()
	return since(t0)/float64(n) + float64(bad)
}

// spawnIdle starts one goroutine per slot of chans, each blocked on
// receiving from its own channel; stopIdle ends them.
func spawnIdle(chans []chan int) {
	for i := range chans {
		ch := make(chan int)
		chans[i] = ch
		go func() { <-ch }()
	}
}

func stopIdle(chans []chan int) {
	for _, ch := range chans {
		close(ch)
	}
}

func spawn(a []uint64) float64 {
	chans := make([]chan int, a[0])
	t0 := time.Now()
	spawnIdle(chans)
	ns := since(t0)
	stopIdle(chans)
	return ns / float64(a[0])
}

func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// waitRunnable lets the new goroutines run up to their receive, so their
// stacks are in use when memory is read.
func waitRunnable(n int) {
	for runtime.NumGoroutine() > 1 && n > 0 {
		time.Sleep(50 * time.Millisecond)
		n--
	}
}

func idleBytes(a []uint64) float64 {
	chans := make([]chan int, a[0])
	runtime.GC()
	before := rssBytes()
	spawnIdle(chans)
	waitRunnable(4)
	after := rssBytes()
	stopIdle(chans)
	if after < before {
		return 0
	}
	return float64(after-before) / float64(a[0])
}

func cpuNs() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano() + ru.Stime.Nano())
}

func idleCPU(a []uint64) float64 {
	chans := make([]chan int, a[0])
	spawnIdle(chans)
	time.Sleep(100 * time.Millisecond)
	c0, t0 := cpuNs(), time.Now()
	time.Sleep(time.Duration(a[1]) * time.Millisecond)
	pct := 100 * (cpuNs() - c0) / since(t0)
	stopIdle(chans)
	return pct
}

func ring(a []uint64) float64 {
	r, hops := int(a[0]), int(a[1])
	chans := make([]chan int, r)
	for i := range chans {
		chans[i] = make(chan int, 1)
	}
	done := make(chan struct{})
	for i := 0; i < r; i++ {
		go func(in, next chan int) {
			for h := range in {
				if h == 0 {
					close(done)
				} else {
					next <- h - 1
				}
			}
		}(chans[i], chans[(i+1)%r])
	}
	t0 := time.Now()
	chans[0] <- hops
	<-done
	ns := since(t0)
	for _, ch := range chans {
		close(ch)
	}
	return ns / float64(hops)
}

const (
	blue = iota
	red
	yellow
	faded
)

type chamMsg struct {
	kind, who, color int // kind: meet, change, exit, faded
	count            uint64
}

const (
	kMeet = iota
	kChange
	kExit
	kFaded
)

func complement(a, b int) int {
	if a == b {
		return a
	}
	return 3 - a - b
}

func chameneos(a []uint64) float64 {
	c, meetings := int(a[0]), a[1]
	mall := make(chan chamMsg, 2*c)
	cr := make([]chan chamMsg, c)
	for i := range cr {
		cr[i] = make(chan chamMsg, 4)
	}
	start, done := make(chan struct{}), make(chan uint64)
	go func() { // the mall
		left, waiting, waitingColor, fadedN, total := meetings, -1, 0, 0, uint64(0)
		for m := range mall {
			switch {
			case m.kind == kFaded:
				total += m.count
				if fadedN++; fadedN == c {
					done <- total
					return
				}
			case left == 0:
				cr[m.who] <- chamMsg{kind: kExit}
			case waiting < 0:
				waiting, waitingColor = m.who, m.color
			default:
				left--
				cr[waiting] <- chamMsg{kind: kMeet, who: m.who, color: m.color}
				waiting = -1
			}
		}
		_ = waitingColor
	}()
	for i := 0; i < c; i++ {
		go func(me, color int) { // a creature
			<-start
			var met uint64
			mall <- chamMsg{kind: kMeet, who: me, color: color}
			for m := range cr[me] {
				switch m.kind {
				case kMeet:
					color = complement(color, m.color)
					met++
					cr[m.who] <- chamMsg{kind: kChange, who: me, color: color}
				case kChange:
					color = m.color
					met++
				case kExit:
					mall <- chamMsg{kind: kFaded, who: me, color: faded, count: met}
					return
				}
				mall <- chamMsg{kind: kMeet, who: me, color: color}
			}
		}(i, i%3)
	}
	t0 := time.Now()
	close(start)
	total := <-done
	ns := since(t0)
	if total != 2*meetings {
		fmt.Fprintf(os.Stderr, "go: chameneos counted %d meetings, expected %d\n", total, 2*meetings)
		os.Exit(1)
	}
	return ns / float64(meetings)
}

type bigMsg struct{ kind, from int } // kind: 0 start, 1 ping, 2 pong

func big(a []uint64) float64 {
	w, n := int(a[0]), a[1]
	chans := make([]chan bigMsg, w)
	for i := range chans {
		// At most one ping from every other worker, one pong and the start.
		chans[i] = make(chan bigMsg, w+2)
	}
	var wg sync.WaitGroup
	wg.Add(w)
	for i := 0; i < w; i++ {
		go func(me int) {
			left := n
			rng := uint64(0x9E3779B97F4A7C15) * uint64(me+1)
			for m := range chans[me] {
				if m.kind == 1 {
					chans[m.from] <- bigMsg{2, me}
					continue
				}
				if left == 0 {
					wg.Done()
					continue
				}
				left--
				rng ^= rng << 13
				rng ^= rng >> 7
				rng ^= rng << 17
				to := int((rng >> 32) % uint64(w-1))
				if to >= me {
					to++
				}
				chans[to] <- bigMsg{1, me}
			}
		}(i)
	}
	t0 := time.Now()
	for i := range chans {
		chans[i] <- bigMsg{0, -1}
	}
	wg.Wait()
	ns := since(t0)
	for _, ch := range chans {
		close(ch)
	}
	return ns / float64(2*uint64(w)*n)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bench_go [--warmup W] [--runs R] WORKLOAD [ARG...]")
	os.Exit(2)
}

func main() {
	warmup, runs := 1, 5
	args := os.Args[1:]
	for len(args) >= 2 && strings.HasPrefix(args[0], "--") {
		v, err := strconv.Atoi(args[1])
		if err != nil {
			usage()
		}
		switch args[0] {
		case "--warmup":
			warmup = v
		case "--runs":
			runs = v
		default:
			usage()
		}
		args = args[2:]
	}
	if len(args) == 0 {
		usage()
	}
	var w *workload
	for i := range workloads {
		if workloads[i].name == args[0] {
			w = &workloads[i]
		}
	}
	if w == nil {
		usage()
	}
	params := append([]uint64(nil), w.full...)
	for i, s := range args[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || i >= len(params) || v == 0 {
			usage()
		}
		params[i] = v
	}
	strs := make([]string, len(params))
	for i, p := range params {
		strs[i] = strconv.FormatUint(p, 10)
	}
	astr := strings.Join(strs, ",")
	for r := 0; r < warmup+runs; r++ {
		v := w.run(params)
		runtime.GC()
		if r >= warmup {
			fmt.Printf("RESULT impl=go workload=%s args=%s metric=%s value=%.4f\n", w.name, astr, w.metric, v)
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("PEAK impl=go workload=%s args=%s rss_kb=%d\n", w.name, astr, ru.Maxrss)
}

// ask: a request/reply round trip, the Go idiom: the request carries its
// own reply channel, and the caller blocks on it.
type request struct {
	v     int
	reply chan int
}

func ask(a []uint64) float64 {
	n := int(a[0])
	server := make(chan request, mailbox)
	go func() {
		for r := range server {
			r.reply <- r.v
		}
	}()
	reply := make(chan int, 1)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		server <- request{i, reply}
		<-reply
	}
	ns := since(t0)
	close(server)
	return ns / float64(n)
}

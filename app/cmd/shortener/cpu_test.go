package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procTicks is one process's CPU time from /proc/<pid>/stat.
type procTicks struct {
	pid, ppid, pgid int
	comm            string
	ticks           int64 // utime + stime, in clock ticks
}

func readProcs() map[int]procTicks {
	out := map[int]procTicks{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+1:]) // f[0] is the state, f[1] ppid, f[2] pgrp, f[11] utime, f[12] stime
		if len(f) < 13 {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		ppid, _ := strconv.Atoi(f[1])
		pgid, _ := strconv.Atoi(f[2])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = procTicks{pid: pid, ppid: ppid, pgid: pgid, comm: s[open+1 : close], ticks: ut + st}
	}
	return out
}

// cpuGroups names the processes a bench started: a process belongs to the
// group of its process group leader (servers run in their own groups) or of
// its parent, or to "load generator" when it is wrk started by this
// process.
type cpuGroups map[int]string // process group id, or this process's pid -> name

func (g cpuGroups) of(p procTicks) string {
	if p.pid == os.Getpid() {
		return g[p.pid]
	}
	if p.ppid == os.Getpid() && p.comm == "wrk" {
		return "load generator"
	}
	if name, ok := g[p.pid]; ok {
		return name
	}
	if name, ok := g[p.pgid]; ok && p.pgid != os.Getpid() {
		return name
	}
	if name, ok := g[p.ppid]; ok && p.ppid != os.Getpid() { // PostgreSQL's backends start their own sessions
		return name
	}
	return ""
}

// cpuUse measures, from 1 s into a run of length d until 1 s before its end,
// how many cores each group used. It returns at once; read the result after
// the run.
func (g cpuGroups) during(d time.Duration) func() map[string]float64 {
	res := make(chan map[string]float64, 1)
	go func() {
		time.Sleep(time.Second)
		a, t0 := readProcs(), time.Now()
		time.Sleep(d - 2*time.Second)
		b, t1 := readProcs(), time.Now()
		cores := map[string]float64{}
		for pid, pb := range b {
			name := g.of(pb)
			if name == "" {
				continue
			}
			cores[name] += float64(pb.ticks-a[pid].ticks) / 100 / t1.Sub(t0).Seconds() // USER_HZ is 100 on Linux
		}
		res <- cores
	}()
	return sync.OnceValue(func() map[string]float64 { return <-res })
}

// formatCores prints groups by their use, largest first.
func formatCores(c map[string]float64) string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return c[names[i]] > c[names[j]] })
	parts := make([]string, len(names))
	total := 0.0
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.2f", n, c[n])
		total += c[n]
	}
	return fmt.Sprintf("%s (total %.2f cores)", strings.Join(parts, ", "), total)
}

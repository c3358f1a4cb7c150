package rollout

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Slot selectors of logs and exec.
const (
	SlotLive    = "live"
	SlotPreview = "preview"
	SlotAll     = "all"
)

// ValidSlotSelector checks a --slot value; all is allowed only where many pods may answer.
func ValidSlotSelector(s string, allowAll bool) error {
	ok := []string{SlotLive, SlotPreview, Blue, Green}
	if allowAll {
		ok = append(ok, SlotAll)
	}
	if !slices.Contains(ok, s) {
		return failure.Newf(failure.Config, "use --slot "+strings.Join(ok, ", "), "--slot %q is not a slot", s)
	}
	return nil
}

// resolveSlots turns a selector into slot names, reading the Services for live and preview.
func (e *Client) resolveSlots(ctx context.Context, sel string) ([]string, error) {
	switch sel {
	case Blue, Green:
		return []string{sel}, nil
	case SlotAll:
		return []string{Blue, Green}, nil
	case SlotLive, SlotPreview, "":
		svc := e.StableService()
		if sel == SlotPreview {
			svc = e.PreviewService()
		}
		slot, _, err := e.serviceSlot(ctx, svc)
		if err != nil {
			return nil, err
		}
		if slot == "" {
			return nil, failure.Newf(failure.NotFound, "deploy the app first: liftoff up (or liftoff deploy)",
				"%s has no %s slot in namespace %s", e.Ref.App, orLive(sel), e.Ref.Namespace)
		}
		return []string{slot}, nil
	}
	return nil, ValidSlotSelector(sel, true)
}

func orLive(s string) string {
	if s == "" {
		return SlotLive
	}
	return s
}

// slotPods lists the app's pods in the given slots.
func (e *Client) slotPods(ctx context.Context, slots []string) ([]corev1.Pod, error) {
	sel := fmt.Sprintf("%s=%s,%s in (%s)", LabelApp, e.Ref.App, LabelSlot, strings.Join(slots, ","))
	list, err := e.Kube.CoreV1().Pods(e.Ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	return list.Items, nil
}

// LogLine is one line a container wrote.
type LogLine struct {
	Time      time.Time `json:"time"`
	Slot      string    `json:"slot"`
	Pod       string    `json:"pod"`
	Container string    `json:"container"`
	Line      string    `json:"line"`
	// Fields are the app's own JSON log fields, when the line is JSON.
	Fields map[string]any `json:"fields,omitempty"`
}

// LogOptions select the lines of `liftoff logs`.
type LogOptions struct {
	Slot   string
	Follow bool
	Since  time.Duration
	// Tail is the number of lines per container to start with (<0: all).
	Tail int
}

// logWindow is how long follow holds lines back to merge them in time order.
const logWindow = 300 * time.Millisecond

// Logs writes the lines of every pod of a slot, merged in time order. With
// Follow it keeps going, picking up pods as they start (and, for the live
// slot, the new slot after a flip), until ctx ends; that is not an error.
func (e *Client) Logs(ctx context.Context, o LogOptions, emit func(LogLine) error) error {
	if err := ValidSlotSelector(orLive(o.Slot), true); err != nil {
		return err
	}
	slots, err := e.resolveSlots(ctx, o.Slot)
	if err != nil {
		return err
	}
	if !o.Follow {
		pods, err := e.slotPods(ctx, slots)
		if err != nil {
			return err
		}
		var lines []LogLine
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, p := range pods {
			for _, c := range p.Spec.Containers {
				if !started(p, c.Name) {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.streamLogs(ctx, p, c.Name, e.logOptions(o, false, time.Time{}), func(l LogLine) {
						mu.Lock()
						lines = append(lines, l)
						mu.Unlock()
					})
				}()
			}
		}
		wg.Wait()
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
		for _, l := range lines {
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	return e.follow(ctx, o, slots, emit)
}

func (e *Client) logOptions(o LogOptions, follow bool, since time.Time) *corev1.PodLogOptions {
	po := &corev1.PodLogOptions{Timestamps: true, Follow: follow}
	switch {
	case !since.IsZero():
		po.SinceTime = &metav1.Time{Time: since}
	case o.Since > 0:
		po.SinceSeconds = ptr.To(int64(o.Since.Seconds()))
	}
	if o.Tail >= 0 && since.IsZero() {
		po.TailLines = ptr.To(int64(o.Tail))
	}
	return po
}

// started says whether a container has run at all (logs exist).
func started(p corev1.Pod, container string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil
		}
	}
	return false
}

// Running says whether a pod's container runs now.
func Running(p corev1.Pod, container string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Running != nil
		}
	}
	return false
}

// streamLogs reads one container's log, parsing the kubelet's timestamps.
func (e *Client) streamLogs(ctx context.Context, p corev1.Pod, container string, po *corev1.PodLogOptions, out func(LogLine)) error {
	po.Container = container
	rc, err := e.Kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, po).Stream(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	slot := p.Labels[LabelSlot]
	r := bufio.NewReaderSize(rc, 64<<10)
	for {
		s, err := r.ReadString('\n')
		if s = strings.TrimRight(s, "\r\n"); s != "" {
			out(parseLogLine(s, slot, p.Name, container))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func parseLogLine(s, slot, pod, container string) LogLine {
	l := LogLine{Slot: slot, Pod: pod, Container: container, Line: s}
	if ts, rest, ok := strings.Cut(s, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, l.Line = t, rest
		}
	}
	if strings.HasPrefix(l.Line, "{") {
		var f map[string]any
		if json.Unmarshal([]byte(l.Line), &f) == nil {
			l.Fields = f
		}
	}
	return l
}

// follow streams every container of the selected slots, re-reading which
// pods (and, for live or preview, which slot) to follow every second.
func (e *Client) follow(ctx context.Context, o LogOptions, slots []string, emit func(LogLine) error) error {
	type stream struct {
		cancel context.CancelFunc
		done   bool
		last   time.Time
	}
	lines := make(chan LogLine, 1024)
	ended := make(chan string, 64)
	streams := map[string]*stream{}
	first := true
	var wg sync.WaitGroup
	defer func() {
		for _, s := range streams {
			if s.cancel != nil {
				s.cancel()
			}
		}
		wg.Wait()
	}()
	scan := func() error {
		if o.Slot == SlotLive || o.Slot == SlotPreview || o.Slot == "" {
			if s, err := e.resolveSlots(ctx, o.Slot); err == nil {
				slots = s
			}
		}
		pods, err := e.slotPods(ctx, slots)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for _, p := range pods {
			for _, c := range p.Spec.Containers {
				key := p.Name + "/" + c.Name
				want[key] = true
				s := streams[key]
				if (s != nil && !s.done) || !started(p, c.Name) || (s != nil && (p.DeletionTimestamp != nil || !Running(p, c.Name))) {
					continue
				}
				po := e.logOptions(o, true, time.Time{})
				if s != nil { // the container restarted: go on after the last line seen
					po = e.logOptions(o, true, s.last.Add(time.Nanosecond))
				} else if !first { // a pod that started since: all of it
					po = &corev1.PodLogOptions{Timestamps: true, Follow: true}
				}
				sctx, cancel := context.WithCancel(ctx)
				if s == nil {
					s = &stream{}
					streams[key] = s
				}
				s.cancel, s.done = cancel, false
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.streamLogs(sctx, p, c.Name, po, func(l LogLine) {
						select {
						case lines <- l:
						case <-sctx.Done():
						}
					})
					select {
					case ended <- key:
					case <-ctx.Done():
					}
				}()
			}
		}
		for key, s := range streams { // pods that left the slot, or are gone
			if !want[key] && s.cancel != nil {
				s.cancel()
				delete(streams, key)
			}
		}
		first = false
		return nil
	}
	if err := scan(); err != nil {
		return err
	}
	var buf []LogLine
	flush := func(all bool) error {
		sort.SliceStable(buf, func(i, j int) bool { return buf[i].Time.Before(buf[j].Time) })
		cut := e.Now().Add(-logWindow)
		n := 0
		for n < len(buf) && (all || !buf[n].Time.After(cut)) {
			if err := emit(buf[n]); err != nil {
				return err
			}
			n++
		}
		buf = buf[n:]
		return nil
	}
	tick := time.NewTicker(logWindow / 2)
	defer tick.Stop()
	rescan := time.NewTicker(time.Second)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return flush(true)
		case l := <-lines:
			buf = append(buf, l)
			if s := streams[l.Pod+"/"+l.Container]; s != nil {
				s.last = l.Time
			}
		case key := <-ended:
			if s := streams[key]; s != nil {
				s.done = true
			}
		case <-tick.C:
			if err := flush(false); err != nil {
				return err
			}
		case <-rescan.C:
			if err := scan(); err != nil && ctx.Err() == nil {
				e.Log.Warnf("logs: %v", err)
			}
		}
	}
}

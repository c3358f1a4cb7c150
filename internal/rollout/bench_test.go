package rollout

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkDeploy is `make bench-deploy`: on the local test cluster (real
// control plane, kwok nodes, 2 replicas per slot, smoke test off because kwok
// pods cannot answer), it times deploy start to flip (no image build), the
// flip itself, and a rollback to the warm slot. b.N is ignored; five rounds.
func BenchmarkDeploy(b *testing.B) {
	e, _ := newEngine(b, "bench-deploy")
	e.ScaleDownDelay = time.Hour // keep the old slot warm: rollback is a flip
	ctx := context.Background()
	var toFlip, flips, rollbacks []time.Duration
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(999), Detach: true}); err != nil { // a live slot to start from
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range 5 {
		res, err := e.Deploy(ctx, DeployOptions{Image: image(1000 + i), Detach: true})
		if err != nil {
			b.Fatal(err)
		}
		toFlip, flips = append(toFlip, res.ToFlip), append(flips, res.Flip)
		start := time.Now()
		if _, err := e.Rollback(ctx, true); err != nil {
			b.Fatal(err)
		}
		rollbacks = append(rollbacks, time.Since(start))
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("\nbench-deploy: 5 rounds on the local test cluster (2 replicas per slot, no image build, smoke off)\n")
	fmt.Printf("  %-34s median %-9s max %-9s (target < 15s)\n", "deploy start to flip", med(toFlip).Round(time.Millisecond), slices.Max(toFlip).Round(time.Millisecond))
	fmt.Printf("  %-34s median %-9s max %-9s (target < 1s)\n", "flip (stable Service patch)", med(flips).Round(time.Millisecond), slices.Max(flips).Round(time.Millisecond))
	fmt.Printf("  %-34s median %-9s max %-9s (target < 1s)\n", "rollback to the warm slot", med(rollbacks).Round(time.Millisecond), slices.Max(rollbacks).Round(time.Millisecond))
	b.ReportMetric(med(toFlip).Seconds(), "to-flip-s")
	b.ReportMetric(float64(med(flips).Milliseconds()), "flip-ms")
	b.ReportMetric(float64(med(rollbacks).Milliseconds()), "rollback-ms")
}

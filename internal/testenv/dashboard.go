package testenv

import (
	"encoding/json"
	"strings"
)

// Dashboard is what a test checks of a Grafana dashboard: its uid, how
// many panels it has, and each panel's PromQL queries.
type Dashboard struct {
	UID     string
	Panels  int
	Queries []DashboardQuery
}

// DashboardQuery is one panel query, its variables set as Grafana would
// for namespace ($namespace) and a 1m $__rate_interval.
type DashboardQuery struct{ Panel, Expr string }

// ParseDashboard reads a dashboard's JSON model.
func ParseDashboard(model []byte, namespace string) (Dashboard, error) {
	var d struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(model, &d); err != nil {
		return Dashboard{}, err
	}
	vars := strings.NewReplacer("$namespace", namespace, "$__rate_interval", "1m")
	out := Dashboard{UID: d.UID, Panels: len(d.Panels)}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr != "" {
				out.Queries = append(out.Queries, DashboardQuery{p.Title, vars.Replace(tg.Expr)})
			}
		}
	}
	return out, nil
}

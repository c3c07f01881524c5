package dashboard

import (
	"html"
	"html/template"
	"strings"
	"time"
)

// listRow is one row of the list page with every text already formatted,
// so that rendering 200 rows is field lookups rather than hundreds of
// template function calls.
type listRow struct {
	Project, Phase, PhaseLabel string
	Href                       string
	PR                         int
	Title                      string
	Meta                       string // repo · author · fork
	SHA, ShortSHA              string
	Local                      bool
	Drift                      string
	ErrLine, ErrTitle          string
	Detail                     string
	Dots                       template.HTML // one <i> per container, escaped here
	Running                    string        // "2/3", "" without containers
	URL, Host                  string
	CPU, CPULevel              string
	Mem, MemLevel              string
	LastRequest, Age, Expires  timeCell
	Kept                       bool
	KeptBy                     string
}

// timeCell is a formatted time: the text shown, and the machine and
// absolute forms for <time datetime> and its tooltip.
type timeCell struct {
	Text, ISO, Abs string
}

// listRows formats envs for the list page. Pure.
func listRows(envs []Environment, now time.Time, base string) []listRow {
	rows := make([]listRow, len(envs))
	var dots strings.Builder
	for i := range envs {
		e := &envs[i]
		r := &rows[i]
		r.Project, r.Phase, r.PhaseLabel = e.Project, e.Phase, phaseLabel(e.Phase)
		r.Href = base + "environments/" + e.Project
		r.PR, r.Title = e.PR, e.Title
		if r.Title == "" {
			r.Title = e.Project
		}
		meta := []string{e.Repo}
		if e.Author != "" {
			meta = append(meta, e.Author)
		}
		if e.HeadRepo != "" {
			meta = append(meta, "fork "+e.HeadRepo)
		}
		r.Meta = strings.Join(meta, " · ")
		r.SHA = e.SHA
		r.ShortSHA = e.SHA[:min(7, len(e.SHA))]
		r.Local = !e.Tracked
		r.Drift = drift(*e)
		if f := e.LastError; f != nil {
			step := f.Step
			if f.Service != "" {
				step += " · " + f.Service
			}
			r.ErrLine, r.ErrTitle = step+": "+f.Message, f.Message
		} else {
			r.Detail = e.Detail
		}
		dots.Reset()
		asleep := e.State == StateStopped
		for _, s := range e.Services {
			for _, c := range s.Containers {
				class := "d-off"
				if !asleep {
					class = "d-" + containerDot(c)
				}
				title := c.Name + ": " + c.State
				if c.Health != "" {
					title += " (" + c.Health + ")"
				}
				dots.WriteString(`<i class="` + class + `" title="` + html.EscapeString(title) + `"></i>`)
			}
		}
		r.Dots = template.HTML(dots.String())
		if len(e.Services) > 0 {
			r.Running = runningText(*e)
		}
		r.URL, r.Host = e.URL, hostOf(e.URL)
		r.CPU, r.CPULevel = cpuText(e.Usage), cpuLevel(e.Usage)
		r.Mem, r.MemLevel = memText(e.Usage), memLevel(e.Usage)
		if !e.LastRequest.IsZero() {
			r.LastRequest = timeCell{agoText(now, e.LastRequest), isoTime(e.LastRequest), absTime(e.LastRequest)}
		}
		r.Age = timeCell{ageText(now, e.Created), isoTime(e.Created), absTime(e.Created)}
		r.Kept, r.KeptBy = e.Keep.Forever, e.Keep.By
		if !e.Expires.IsZero() {
			r.Expires = timeCell{untilText(now, e.Expires), isoTime(e.Expires), absTime(e.Expires)}
		}
	}
	return rows
}

// phaseChip is one phase filter of the list page.
type phaseChip struct {
	Phase, Label, Href string
	Count              int
	On                 bool
}

// phaseChips lists the phases worth a chip: those with environments, and
// the selected one.
func phaseChips(s Summary, f Filter, link func(Filter, string, string) string) []phaseChip {
	var out []phaseChip
	for _, p := range Phases() {
		n := s.ByPhase[p]
		if n == 0 && p != f.Phase {
			continue
		}
		out = append(out, phaseChip{Phase: p, Label: phaseLabel(p), Href: link(f, "phase", p), Count: n, On: p == f.Phase})
	}
	return out
}

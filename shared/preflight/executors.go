package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/shared/config"
)

// JobRunName is the name of the runner job run a preflight creates: a Code Engine name (lower
// case letters, digits and dashes, at most 63 characters) derived from the run id.
func JobRunName(runID string) string {
	var b strings.Builder
	b.WriteString("preflight-")
	for _, c := range strings.ToLower(runID) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-")
}

// runnerJob proves the runner job: it exists, this identity can create a job run of it, and the
// run (a named one carrying the probe, which the runner records and exits on at once) reaches
// the runner.
func (p *run) runnerJob(ctx context.Context, f *config.Fleet) []Result {
	needed := slices.ContainsFunc(f.Databases, func(db config.Database) bool { return db.ExecutorKey() == config.ExecDb2CLI })
	if p.d.Jobs == nil {
		if needed {
			return fail("databases run as runner job runs, but no Code Engine project is configured",
				"set KEYGUARD_CE_PROJECT_ID, KEYGUARD_CE_REGION and KEYGUARD_CE_RUNNER_JOB (the module sets them on the scheduler)")
		}
		return skip("no Code Engine project configured, and no database runs as a runner job run")
	}
	job, err := p.d.Jobs.Job(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		return fail(fmt.Sprintf("job %s does not exist in project %s: the scheduler cannot start a single backup of a db2cli database", p.d.RunnerJob, p.d.CEProjectID),
			"check KEYGUARD_CE_RUNNER_JOB and KEYGUARD_CE_PROJECT_ID, or create the job (terraform apply)")
	case err != nil && refused(err):
		return fail("reading job "+p.d.RunnerJob+" was refused: "+err.Error(), "give this identity Writer on the Code Engine project (the scheduler's profile holds it)")
	case err != nil:
		return fail("cannot read job "+p.d.RunnerJob+": "+err.Error(), "check KEYGUARD_CE_REGION and KEYGUARD_CE_PROJECT_ID")
	}
	name := JobRunName(p.o.RunID)
	start := time.Now()
	if err := p.d.Jobs.RunEvent(ctx, name, p.probe()); err != nil {
		if refused(err) {
			return fail("creating job run "+name+" was refused: "+err.Error(), "give this identity Writer on the Code Engine project: the scheduler starts every backup of a db2cli database this way")
		}
		return fail("creating job run "+name+" failed: "+err.Error(), "check the job and the project in the Code Engine console")
	}
	got := p.awaitReceipts(ctx, start, map[string]time.Duration{config.FnRunner: p.o.JobWait})
	rc, ok := got[config.FnRunner]
	if !ok {
		return fail(fmt.Sprintf("job %s exists and job run %s was created, but the runner recorded no receipt within %s", job.Name, name, p.o.JobWait),
			fmt.Sprintf("look at the run: `ibmcloud ce jobrun get --name %s` and `ibmcloud ce jobrun logs --name %s` (image, environment, its access to Object Storage)", name, name))
	}
	d := fmt.Sprintf("job %s exists; job run %s (the probe, a no-op) reached the runner in %s", job.Name, name, rc.after.Round(time.Millisecond))
	if job.Image != "" {
		d += "; image " + job.Image
	}
	return []Result{{Status: OK, Detail: d}}
}

// db2Checks asks each Db2 on Cloud instance of the fleet for its backups.
func (p *run) db2Checks(f *config.Fleet) []Check {
	var cs []Check
	seen := map[string]bool{}
	n := 0
	for _, db := range f.Databases {
		if db.Executor != config.ExecDb2SaaS || seen[db.Instance] {
			continue
		}
		seen[db.Instance] = true
		n++
		if n > p.o.MaxPerKind {
			continue
		}
		cs = append(cs, Check{AreaExecutors, "db2 on cloud " + db.Name, func(ctx context.Context) []Result {
			if p.d.Db2 == nil {
				return fail("the Db2 on Cloud API is not configured", "set KEYGUARD_DB2SAAS_URL")
			}
			count, err := p.d.Db2.Backups(ctx, db.Instance)
			switch {
			case err != nil && refused(err):
				return fail("listing the backups of "+db.Instance+" was refused: "+err.Error(), "give the scheduler's identity Operator on the Db2 on Cloud instance (db2_instance_crns in the module)")
			case err != nil:
				return fail("listing the backups of "+db.Instance+" failed: "+err.Error(), "check KEYGUARD_DB2SAAS_URL (the instance's region) and the instance CRN in the fleet policy")
			}
			return ok("the instance answers the backup list: " + plural(count, "backup"))
		}})
	}
	if n > p.o.MaxPerKind {
		cs = append(cs, Check{AreaExecutors, "more db2 on cloud instances", func(context.Context) []Result {
			return skip(fmt.Sprintf("%d more instances not asked (at most %d per run)", n-p.o.MaxPerKind, p.o.MaxPerKind))
		}})
	}
	return cs
}

// agents reports, for the databases served by host agents, whether an agent has polled within
// three of its intervals.
func (p *run) agents(ctx context.Context, f *config.Fleet) []Result {
	var dbs []string
	for _, db := range f.Databases {
		if db.ExecutorKey() == config.ExecDb2CLI+"-"+config.RunnerHost {
			dbs = append(dbs, db.Name)
		}
	}
	if len(dbs) == 0 {
		return skip("no database is served by a host agent (runner: host)")
	}
	list, err := p.d.Objects.List(ctx, AgentPrefix)
	if err != nil {
		return fail("cannot list the agents' polls: "+err.Error(), "give this identity the custom role `<prefix> objects` on the bucket")
	}
	now := p.clk.Now()
	var polls []AgentPoll
	for _, o := range list {
		body, _, err := p.d.Objects.Get(ctx, o.Key)
		if err != nil {
			continue
		}
		var a AgentPoll
		if json.Unmarshal(body, &a) == nil {
			polls = append(polls, a)
		}
	}
	var out []Result
	for _, db := range dbs {
		res := Result{Check: "host agent for " + db}
		var best *AgentPoll
		for i, a := range polls {
			if (len(a.Databases) == 0 || slices.Contains(a.Databases, db)) && (best == nil || a.At.After(best.At)) {
				best = &polls[i]
			}
		}
		switch {
		case best == nil:
			res.Status, res.Detail = Fail, "no host agent has ever polled for "+db+": its backups stay in flight until their lease expires"
			res.Fix = "run the runner as an agent on the Db2 host (KEYGUARD_RUNNER_POLL, KEYGUARD_RUNNER_DATABASES; docs/deploy.md step 2)"
		case now.Sub(best.At) > 3*best.Interval+time.Minute:
			res.Status = Fail
			res.Detail = fmt.Sprintf("agent %s last polled %s ago, every %s expected", best.Agent, now.Sub(best.At).Round(time.Second), best.Interval)
			res.Fix = "check the agent process on the Db2 host and its logs"
		case best.Error != "":
			res.Status = Fail
			res.Detail = fmt.Sprintf("agent %s polled %s ago but failed: %s", best.Agent, now.Sub(best.At).Round(time.Second), best.Error)
			res.Fix = "check the agent's access to Object Storage and Event Notifications, and its logs"
		default:
			res.Status = OK
			res.Detail = fmt.Sprintf("agent %s polled %s ago (every %s)", best.Agent, now.Sub(best.At).Round(time.Second), best.Interval)
		}
		out = append(out, res)
	}
	return out
}

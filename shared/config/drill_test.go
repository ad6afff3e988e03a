package config

import (
	"strings"
	"testing"
	"time"
)

func TestDrillPolicy(t *testing.T) {
	f, err := Load(Example)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Database("archive")
	sc, ok := a.DrillSchedule()
	if !ok || a.Drill.Target != "ARCHDRL" || a.Drill.Probe == "" {
		t.Fatalf("archive drill %+v", a.Drill)
	}
	if next := sc.Next(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)); !next.Equal(time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)) {
		t.Errorf("next drill %s, want Saturday 06:00", next)
	}
	if p, _ := f.Database("proddb"); p.Drill != nil {
		t.Errorf("proddb has a drill: %+v", p.Drill)
	}
	const db = `version: 1
defaults: {check: {max_age: 30h}}
databases:
  - name: sales
    instance: db2inst1@h
    executor: db2cli
    backup_dir: /b
    key_crn: crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001
    schedules: {full: "@daily"}
`
	g, err := Load([]byte(db))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := g.Database("sales"); s.Check.MaxAge != 30*time.Hour {
		t.Errorf("check defaults not merged: %+v", s.Check)
	}
	for _, c := range []struct{ drill, want string }{
		{`{cron: "0 6 * * 6", target: SALES}`, "other than the database's own"},
		{`{cron: "0 6 * * 6", target: "bad alias"}`, "must be a Db2 alias"},
		{`{cron: "CRON_TZ=Europe/Paris 0 6 * * 6", target: SCR}`, "no CRON_TZ="},
		{`{cron: "61 6 * * 6", target: SCR}`, "drill.cron"},
		{`{cron: "0 6 * * 6", target: SCR, storage_paths: [relative]}`, "not an absolute path"},
	} {
		_, err := Load([]byte(db + "    drill: " + c.drill + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("drill %s: %v, want %q", c.drill, err, c.want)
		}
	}
	h, err := Load([]byte(db + "    runner: host\n    drill: {cron: \"@weekly\", target: SCR}\n"))
	if err != nil {
		t.Fatalf("a host database's drill: %v", err)
	}
	if _, ok := h.Databases[0].DrillSchedule(); !ok {
		t.Error("a host database's drill has no schedule")
	}
}

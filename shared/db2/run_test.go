package db2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
)

// script answers commands by their joined argv; unknown commands fail the test.
type script struct {
	t       *testing.T
	answers map[string]string
	calls   []string
	fail    error
}

func (s *script) Run(_ context.Context, argv []string) (string, int, error) {
	cmd := strings.Join(argv, " ")
	s.calls = append(s.calls, cmd)
	if s.fail != nil {
		return "", -1, s.fail
	}
	out, ok := s.answers[cmd]
	if !ok {
		s.t.Fatalf("unexpected command %q", cmd)
	}
	return out, 0, nil
}

const dbsizeCall = "db2 CALL GET_DBSIZE_INFO(?, ?, ?, -1)"

func TestInspect(t *testing.T) {
	cfgs, apps, sizes := samples(t, "dbcfg"), samples(t, "apps"), samples(t, "dbsize")
	connected := "\n   Database Connection Information\n\n Database server        = DB2/LINUXX8664 11.5.9.0\n SQL authorization ID   = DB2INST1\n Local database alias   = SALES\n\n"
	reset := "DB20000I  The SQL command completed successfully.\n"
	t.Run("normal", func(t *testing.T) {
		s := &script{t: t, answers: map[string]string{
			"db2 get db cfg for SALES": cfgs["archive"], "db2 connect to SALES": connected, dbsizeCall: sizes["ok"],
			"db2 connect reset": reset, "db2 list applications for db SALES": apps["two"]}}
		in, err := Inspect(context.Background(), s, "SALES")
		if err != nil {
			t.Fatal(err)
		}
		if !in.Config.TrackMod || in.Size.Size != 1207959552 || len(in.Applications) != 2 {
			t.Errorf("inspection %+v", in)
		}
		want := []string{"db2 get db cfg for SALES", "db2 connect to SALES", dbsizeCall, "db2 connect reset", "db2 list applications for db SALES"}
		if strings.Join(s.calls, "|") != strings.Join(want, "|") {
			t.Errorf("calls %q, want %q", s.calls, want)
		}
	})
	t.Run("backup pending skips the size", func(t *testing.T) {
		s := &script{t: t, answers: map[string]string{
			"db2 get db cfg for SALES": cfgs["backup-pending"], "db2 list applications for db SALES": apps["none"]}}
		in, err := Inspect(context.Background(), s, "SALES")
		if err != nil {
			t.Fatal(err)
		}
		if in.Size != SizeUnknown || !in.Config.BackupPending || len(in.Applications) != 0 {
			t.Errorf("inspection %+v", in)
		}
	})
	t.Run("size failure still resets the connection", func(t *testing.T) {
		s := &script{t: t, answers: map[string]string{
			"db2 get db cfg for SALES": cfgs["archive"], "db2 connect to SALES": connected, dbsizeCall: sizes["no-connection"],
			"db2 connect reset": reset}}
		_, err := Inspect(context.Background(), s, "SALES")
		if !errors.Is(err, &Error{Code: "SQL1024N"}) || s.calls[len(s.calls)-1] != "db2 connect reset" {
			t.Errorf("err %v, calls %q", err, s.calls)
		}
	})
	t.Run("keystore failure on connect is rotation", func(t *testing.T) {
		s := &script{t: t, answers: map[string]string{
			"db2 get db cfg for SALES": cfgs["archive"], "db2 connect to SALES": samples(t, "backup")["keystore"]}}
		_, err := Inspect(context.Background(), s, "SALES")
		if ClassOf(err) != events.Rotation {
			t.Errorf("err %v class %s", err, ClassOf(err))
		}
	})
	t.Run("database not found", func(t *testing.T) {
		s := &script{t: t, answers: map[string]string{"db2 get db cfg for SALES": cfgs["not-found"]}}
		_, err := Inspect(context.Background(), s, "SALES")
		if ClassOf(err) != events.Configuration || !strings.Contains(err.Error(), "db cfg for SALES") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("runner failure", func(t *testing.T) {
		s := &script{t: t, fail: context.DeadlineExceeded}
		_, err := Inspect(context.Background(), s, "SALES")
		if !errors.Is(err, context.DeadlineExceeded) || ClassOf(err) != events.Transient {
			t.Errorf("err %v", err)
		}
	})
	t.Run("invalid name runs nothing", func(t *testing.T) {
		s := &script{t: t}
		_, err := Inspect(context.Background(), s, "x y")
		if ClassOf(err) != events.Permanent || len(s.calls) != 0 {
			t.Errorf("err %v calls %q", err, s.calls)
		}
	})
}

func TestExecute(t *testing.T) {
	p, err := PlanBackup(req(events.Full, events.Online, func(r *Request) { r.Database = "SALES" }), archive, 0, true, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	backupCmd := strings.Join(p.Commands[0], " ")
	const ts = "20261124013000"
	verifyCmd := "db2ckbkp /backup/SALES.0.db2inst1.DBPART000.20261124013000.001"
	backups, checks := samples(t, "backup"), samples(t, "ckbkp")
	cases := []struct {
		name      string
		backup    string
		check     string
		verified  bool
		image     string
		class     events.FailureClass
		reason    string
		wantCalls int
	}{
		{"verified", backups["success"], checks["ok-header"], true, "/backup/SALES.0.db2inst1.DBPART000.20261124013000.001", "", "", 2},
		{"corrupt image", backups["success"], checks["errors"], false, "/backup/SALES.0.db2inst1.DBPART000.20261124013000.001", events.Transient, ReasonVerificationFailed, 2},
		{"unreadable verification", backups["success"], checks["garbage"], false, "/backup/SALES.0.db2inst1.DBPART000.20261124013000.001", events.Permanent, ReasonUnrecognisedOutput, 2},
		{"keystore", backups["keystore"], "", false, "", events.Rotation, "", 1},
		{"disk full", backups["disk-full"], "", false, "", events.Configuration, "", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &script{t: t, answers: map[string]string{backupCmd: c.backup, verifyCmd: c.check}}
			res, err := Execute(context.Background(), s, p, nil)
			if len(s.calls) != c.wantCalls {
				t.Errorf("calls %q", s.calls)
			}
			if res.Verified != c.verified || res.Image != c.image {
				t.Errorf("result %+v", res)
			}
			if c.class == "" {
				if err != nil || res.Timestamp != ts || res.Check.Buffers != 26 {
					t.Fatalf("err %v result %+v", err, res)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Class != c.class || e.Reason != c.reason {
				t.Fatalf("err %v, want class %s reason %q", err, c.class, c.reason)
			}
		})
	}
	t.Run("empty plan", func(t *testing.T) {
		_, err := Execute(context.Background(), &script{t: t}, Plan{}, nil)
		if ClassOf(err) != events.Permanent {
			t.Errorf("err %v", err)
		}
	})
	t.Run("RunnerFunc", func(t *testing.T) {
		r := RunnerFunc(func(_ context.Context, argv []string) (string, int, error) {
			return "", 0, fmt.Errorf("no %s here", argv[0])
		})
		_, err := Execute(context.Background(), r, p, nil)
		if err == nil || !strings.Contains(err.Error(), "no db2 here") {
			t.Errorf("err %v", err)
		}
	})
}

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/simdb2"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// serve starts the local stack and keeps it up until ctx ends, on a clock that follows wall
// time with a scheduler tick every -tick: the deployable databases of the local fleet (or of
// -fleet), their policy in the bucket as a deployment keeps it, and the environment that points
// the operator command at it, printed as export lines (and written to -env-file).
func serve(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fleetFile := fs.String("fleet", "", "deployable fleet policy (default: the Db2 on Cloud and self-managed databases of test/stack/fleet.dev.yaml)")
	tick := fs.Duration("tick", 30*time.Second, "wall time between scheduler ticks (a deployment's periodic timer ticks every few minutes)")
	envFile := fs.String("env-file", "", "also write the export lines to this file, once the stack is ready")
	imageSize := fs.Int64("image-size", 64<<20, "bytes of each image the fake db2 writes")
	vgw := fs.String("versitygw", defaultVersitygw(), "versitygw binary")
	level := fs.String("log", "info", "log level of the components' logs on stderr: debug, info, warn, error, or off")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: keyguard-local serve [flags]\n\n"+
			"Start the local stack and keep it up until interrupted, printing the environment under which\n"+
			"every keyguard command works against it from another terminal.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *tick < time.Second {
		fs.Usage()
		return fmt.Errorf("serve: unexpected argument or -tick under 1s")
	}
	src := stack.DevYAML
	if *fleetFile != "" {
		b, err := os.ReadFile(*fleetFile)
		if err != nil {
			return err
		}
		src = b
	}
	log, err := serveLogger(*level)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "keyguard-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fleetYAML, db2, err := deployable(src, work, *imageSize)
	if err != nil {
		return err
	}
	fleet, err := config.Load(fleetYAML) // as the operator command and a deployment load it
	if err != nil {
		return fmt.Errorf("the served policy: %w", err)
	}
	st, err := stack.Start(ctx, stack.Options{Versitygw: *vgw, Fleet: fleet, FleetYAML: fleetYAML, FleetInBucket: true,
		Start: time.Now().UTC(), Logger: log, Db2CLI: db2})
	if err != nil {
		return err
	}
	defer st.Close()

	// The clock follows wall time: runs, emulated services and leases move at their real pace.
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				st.Clock.Set(time.Now().UTC())
			}
		}
	}()
	if err := st.Tick(ctx); err != nil {
		return fmt.Errorf("first tick: %w", err)
	}
	env := exports(st.OperatorEnv(""))
	fmt.Fprintf(out, "keyguard local stack: serving until interrupted (Ctrl-C stops it and deletes its data)\n")
	fmt.Fprintf(out, "  S3 (versitygw) %s, bucket %s; Event Notifications, Key Protect and Db2 on Cloud emulators on loopback\n", st.S3.Endpoint, st.S3.Bucket)
	fmt.Fprintf(out, "  fleet: %s; its policy is %s in the bucket (keyguard fleet show / fleet push)\n", describeFleet(fleet), stack.FleetKey)
	fmt.Fprintf(out, "  clock: wall time; a scheduler tick every %s\n\n", *tick)
	fmt.Fprintf(out, "In another terminal, paste:\n\n%s\n", env)
	fmt.Fprintf(out, "then run keyguard (go run ./cmd/keyguard, or make build and bin/keyguard), e.g.:\n"+
		"  keyguard status\n  keyguard backup list %[1]s\n  keyguard backup create %[1]s -wait -reason 'trying keyguard'\n\n", firstSelfManaged(fleet))
	if *envFile != "" {
		tmp := *envFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(env), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *envFile); err != nil {
			return err
		}
		defer os.Remove(*envFile)
	}
	fmt.Fprintln(out, "ready")

	t := time.NewTicker(*tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "stopping")
			return nil
		case <-t.C:
			if err := st.Tick(ctx); err != nil && ctx.Err() == nil {
				fmt.Fprintf(out, "tick: %v\n", err)
			}
		}
	}
}

// deployable turns a local fleet policy into the policy the stack serves: without the databases
// of the simulated executor (a deployment refuses them), the self-managed database's backups in
// work, and a fake db2 command line for it (one: the fake serves one database) with archive
// logging and change tracking on, so that online and incremental backups work.
func deployable(src []byte, work string, imageBytes int64) ([]byte, *stack.Db2CLI, error) {
	f, err := stack.LoadFleet(src)
	if err != nil {
		return nil, nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil || len(doc.Content) == 0 {
		return nil, nil, fmt.Errorf("fleet policy: %v", err)
	}
	dbs := mapValue(doc.Content[0], "databases")
	if dbs == nil || len(dbs.Content) != len(f.Databases) {
		return nil, nil, errors.New("fleet policy: no databases list")
	}
	var db2 *stack.Db2CLI
	var kept []*yaml.Node
	for i, db := range f.Databases {
		node := dbs.Content[i]
		switch db.Executor {
		case simdb2.Name:
			continue
		case config.ExecDb2CLI:
			if db2 != nil {
				return nil, nil, fmt.Errorf("database %s: the local stack serves one self-managed database (the fake db2 knows one)", db.Name)
			}
			dir := filepath.Join(work, "backup", db.Name)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, nil, err
			}
			setMapValue(node, "backup_dir", dir)
			db2 = &stack.Db2CLI{FakeBin: filepath.Join(work, "bin"), StateFile: filepath.Join(work, "db2.json")}
			st := fakedb2.State{Database: db.Alias, Instance: db.Db2Instance(), ImageBytes: imageBytes, TrackMod: true}
			if db.Mode == events.Online {
				st.LogArchMeth1 = "DISK:/db2/archive/"
			}
			if err := fakedb2.SaveState(db2.StateFile, st); err != nil {
				return nil, nil, err
			}
			if err := fakedb2.BuildTo(db2.FakeBin); err != nil {
				return nil, nil, err
			}
		}
		kept = append(kept, node)
	}
	if len(kept) == 0 {
		return nil, nil, errors.New("fleet policy: no deployable database (the simulated executor is not served)")
	}
	dbs.Content = kept
	root := doc.Content[0]
	doc.HeadComment, root.HeadComment = "", ""
	if len(root.Content) > 0 {
		root.Content[0].HeadComment = ""
	}
	var buf bytes.Buffer
	buf.WriteString("# Served by keyguard-local serve: the deployable databases of the local fleet, on loopback.\n" +
		"# Db2 on Cloud databases run on its emulator; the self-managed one is backed up by the runner\n" +
		"# against a fake db2 command line. Times are UTC.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), db2, enc.Close()
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setMapValue(m *yaml.Node, key, value string) {
	if v := mapValue(m, key); v != nil {
		v.Kind, v.Tag, v.Value, v.Style = yaml.ScalarNode, "!!str", value, 0
		return
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &yaml.Node{Kind: yaml.ScalarNode, Value: value})
}

// exports formats env as shell export lines, values single-quoted.
func exports(env []string) string {
	sort.Strings(env)
	var b strings.Builder
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	return b.String()
}

func describeFleet(f *config.Fleet) string {
	var parts []string
	for _, d := range f.Databases {
		what := d.Executor
		switch d.Executor {
		case config.ExecDb2SaaS:
			what = "Db2 on Cloud, on its emulator"
		case config.ExecDb2CLI:
			what = "self-managed, the runner against a fake db2"
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", d.Name, what))
	}
	return strings.Join(parts, ", ")
}

func firstSelfManaged(f *config.Fleet) string {
	for _, d := range f.Databases {
		if d.Executor == config.ExecDb2CLI {
			return d.Name
		}
	}
	return f.Databases[0].Name
}

// serveLogger writes the components' logs as text on stderr at level ("off": nowhere).
func serveLogger(level string) (*slog.Logger, error) {
	if level == "off" {
		return nil, nil
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), nil
}

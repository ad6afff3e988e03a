package images

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction: its keyword and the rest of the line.
type instruction struct {
	Line    int
	Keyword string
	Args    string
}

var knownKeywords = map[string]bool{"FROM": true, "ARG": true, "RUN": true, "COPY": true, "ADD": true, "USER": true,
	"ENTRYPOINT": true, "CMD": true, "ENV": true, "WORKDIR": true, "LABEL": true, "EXPOSE": true, "SHELL": true,
	"HEALTHCHECK": true, "STOPSIGNAL": true, "VOLUME": true, "ONBUILD": true}

// parseDockerfile splits a Dockerfile into instructions, joining backslash continuations and
// dropping comments and blank lines.
func parseDockerfile(src string) ([]instruction, error) {
	var out []instruction
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		start := i + 1
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				continue
			}
			line = strings.TrimSuffix(line, "\\") + " " + next
		}
		kw, args, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if !knownKeywords[kw] {
			return nil, fmt.Errorf("line %d: unknown instruction %q", start, kw)
		}
		if strings.TrimSpace(args) == "" {
			return nil, fmt.Errorf("line %d: %s without arguments", start, kw)
		}
		out = append(out, instruction{Line: start, Keyword: kw, Args: strings.TrimSpace(args)})
	}
	return out, nil
}

var fromRE = regexp.MustCompile(`^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$`)

// checkDockerfile returns what is wrong with a function Dockerfile: a final stage on an empty or
// distroless static base, with no RUN, ADD or SHELL, that copies the binary and the CA bundle
// from an earlier stage, runs as user 65532 and has an exec-form entrypoint; a build stage that
// compiles ./functions/${FUNCTION} with CGO disabled.
func checkDockerfile(src string) []string {
	ins, err := parseDockerfile(src)
	if err != nil {
		return []string{err.Error()}
	}
	var p []string
	var stages [][]instruction
	names := map[string]bool{}
	for _, in := range ins {
		if in.Keyword == "FROM" {
			m := fromRE.FindStringSubmatch(in.Args)
			if m == nil {
				p = append(p, fmt.Sprintf("line %d: malformed FROM", in.Line))
				continue
			}
			if m[2] != "" {
				names[m[2]] = true
			}
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.Keyword != "ARG" {
				p = append(p, fmt.Sprintf("line %d: %s before the first FROM", in.Line, in.Keyword))
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		return append(p, "want a build stage and a final stage")
	}
	final := stages[len(stages)-1]
	base := fromRE.FindStringSubmatch(final[0].Args)[1]
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		p = append(p, fmt.Sprintf("final stage FROM %s: want scratch or distroless static (no shell)", base))
	}
	var user, entrypoint string
	copied := map[string]bool{}
	for _, in := range final[1:] {
		switch in.Keyword {
		case "RUN", "ADD", "SHELL":
			p = append(p, fmt.Sprintf("line %d: %s in the final stage", in.Line, in.Keyword))
		case "USER":
			user = in.Args
		case "ENTRYPOINT":
			entrypoint = in.Args
		case "CMD":
			if !strings.HasPrefix(in.Args, "[") {
				p = append(p, fmt.Sprintf("line %d: CMD must be in exec form", in.Line))
			}
		case "COPY":
			fields := strings.Fields(in.Args)
			from := ""
			var rest []string
			for _, f := range fields {
				if v, ok := strings.CutPrefix(f, "--from="); ok {
					from = v
				} else if !strings.HasPrefix(f, "--") {
					rest = append(rest, f)
				}
			}
			if from == "" || !names[from] {
				p = append(p, fmt.Sprintf("line %d: COPY must come --from an earlier stage", in.Line))
			}
			if len(rest) >= 2 {
				copied[rest[len(rest)-1]] = true
			}
		}
	}
	if user == "" {
		p = append(p, "final stage has no USER (it would run as root)")
	} else if uid, _, _ := strings.Cut(user, ":"); uid == "0" || uid == "root" || !regexp.MustCompile(`^[0-9]+$`).MatchString(uid) {
		p = append(p, fmt.Sprintf("USER %s: want a numeric, non-root user", user))
	} else if user != User {
		p = append(p, fmt.Sprintf("USER %s: want %s, as the Go image builder sets", user, User))
	}
	var exec []string
	if entrypoint == "" {
		p = append(p, "final stage has no ENTRYPOINT")
	} else if err := json.Unmarshal([]byte(entrypoint), &exec); err != nil {
		p = append(p, fmt.Sprintf("ENTRYPOINT %s: want exec form (a JSON array), not shell form", entrypoint))
	} else if !slices.Equal(exec, []string{Entrypoint}) {
		p = append(p, fmt.Sprintf("ENTRYPOINT %v: want [%q], as the Go image builder sets", exec, Entrypoint))
	}
	for _, want := range []string{Entrypoint, CAPath} {
		if !copied[want] {
			p = append(p, fmt.Sprintf("final stage does not COPY %s", want))
		}
	}
	build := strings.Builder{}
	hasArg := false
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			if in.Keyword == "RUN" {
				build.WriteString(in.Args + "\n")
			}
			if in.Keyword == "ARG" && strings.HasPrefix(in.Args, "FUNCTION") {
				hasArg = true
			}
		}
	}
	if !hasArg {
		p = append(p, "the build stage does not declare ARG FUNCTION")
	}
	if !regexp.MustCompile(`CGO_ENABLED=0[^\n]*go build[^\n]*\./functions/\$\{FUNCTION\}`).MatchString(build.String()) {
		p = append(p, "the build stage does not run CGO_ENABLED=0 go build ./functions/${FUNCTION}")
	}
	return p
}

func TestDockerfile(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "infra", "images", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if p := checkDockerfile(string(src)); len(p) > 0 {
		t.Errorf("infra/images/Dockerfile:\n%s", strings.Join(p, "\n"))
	}
}

func TestDockerfileChecksFail(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(repoRoot(t), "infra", "images", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, old, new, want string }{
		{"shell base", "FROM scratch", "FROM alpine:3", "want scratch or distroless static"},
		{"root user", "USER 65532:65532", "USER root", "want a numeric, non-root user"},
		{"uid 0", "USER 65532:65532", "USER 0", "want a numeric, non-root user"},
		{"other user", "USER 65532:65532", "USER 1000", "want 65532:65532"},
		{"no user", "USER 65532:65532\n", "", "has no USER"},
		{"shell-form entrypoint", `ENTRYPOINT ["/function"]`, "ENTRYPOINT /function", "want exec form"},
		{"wrong entrypoint", `ENTRYPOINT ["/function"]`, `ENTRYPOINT ["/app"]`, `want ["/function"]`},
		{"run in final stage", "USER 65532:65532", "RUN chmod 755 /function\nUSER 65532:65532", "RUN in the final stage"},
		{"copy from outside", "COPY --from=build /out/function /function", "COPY function /function", "COPY must come --from an earlier stage"},
		{"no CA", "COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n", "", "does not COPY /etc/ssl/certs/ca-certificates.crt"},
		{"cgo", "CGO_ENABLED=0 ", "", "CGO_ENABLED=0 go build"},
		{"typo", "WORKDIR /src", "WORKDRI /src", `unknown instruction "WORKDRI"`},
		{"single stage", "FROM golang:${GO_VERSION} AS build", "ARG X=1", "want a build stage and a final stage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(string(good), c.old) {
				t.Fatalf("the Dockerfile has no %q to change", c.old)
			}
			bad := strings.Replace(string(good), c.old, c.new, 1)
			got := strings.Join(checkDockerfile(bad), "\n")
			if !strings.Contains(got, c.want) {
				t.Errorf("want a problem containing %q, got:\n%s", c.want, got)
			}
		})
	}
}

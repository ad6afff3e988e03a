package check

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/config"
)

const modulePath = "github.com/keyguard-dev/keyguard"

// parseDir parses the non-test Go files of a directory of the repository.
func parseDir(t *testing.T, rel string) []*ast.File {
	t.Helper()
	dir := repoPath(rel)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// selectors lists every x.Name the files use (Name only), and every pkg.Name call as "pkg.Name".
func selectors(files []*ast.File) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				out[sel.Sel.Name] = true
				if id, ok := sel.X.(*ast.Ident); ok {
					out[id.Name+"."+sel.Sel.Name] = true
				}
			}
			return true
		})
	}
	return out
}

// calls reports whether the files call a method or function named name.
func calls(files []*ast.File, name string) bool {
	found := false
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == name {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// capabilitiesOf derives what a function's code calls from functions/<fn>/main.go and its
// handler package shared/<fn>:
//   - the object store, the state store or a COS client from runtime.Deps: objects
//   - the Event Notifications sender (Deps.Send): publish
//   - codeengine.New (the runner job executor): job runs
//   - db2saas.New (the Db2 on Cloud executor): Db2 backups
//   - Config.Keys (the Key Protect client): keys
//   - a Delete call in the handler package (retention): delete
func capabilitiesOf(t *testing.T, fn string) []Capability {
	t.Helper()
	main := parseDir(t, "functions/"+fn)
	sel := selectors(main)
	var caps []Capability
	if sel["Objects"] || sel["States"] || sel["COSClient"] {
		caps = append(caps, CapObjects)
	}
	if sel["Send"] {
		caps = append(caps, CapPublish)
	}
	if sel["codeengine.New"] {
		caps = append(caps, CapJobRuns)
	}
	if sel["db2saas.New"] {
		caps = append(caps, CapDb2Backups)
	}
	if calls(main, "Keys") {
		caps = append(caps, CapKeys)
	}
	handler := false
	for _, f := range main {
		for _, im := range f.Imports {
			if strings.Trim(im.Path.Value, `"`) == modulePath+"/shared/"+fn {
				handler = true
			}
		}
	}
	if !handler {
		t.Fatalf("functions/%s/main.go does not import its handler package shared/%s", fn, fn)
	}
	if calls(parseDir(t, "shared/"+fn), "Delete") {
		caps = append(caps, CapDelete)
	}
	return caps
}

func capSet(caps []Capability) string {
	s := make([]string, len(caps))
	for i, c := range caps {
		s[i] = string(c)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// FunctionAccess, which the Terraform's grants are checked against, is what the code calls.
func TestAccessFollowsCode(t *testing.T) {
	fns := append(append([]string{}, config.Apps...), config.Jobs...)
	for _, fn := range fns {
		got, want := capSet(capabilitiesOf(t, fn)), capSet(FunctionAccess[fn])
		if got != want {
			t.Errorf("%s: the code calls [%s], FunctionAccess grants [%s]", fn, got, want)
		}
	}
	if len(FunctionAccess) != len(fns) {
		t.Errorf("FunctionAccess has %d functions, shared/config %d", len(FunctionAccess), len(fns))
	}
}

// The custom Object Storage roles cover exactly the S3 operations the object store and the
// uploader perform.
func TestObjectActionsFollowCode(t *testing.T) {
	used := map[string]bool{}
	for _, dir := range []string{"shared/objstore", "shared/upload"} {
		for name := range selectors(parseDir(t, dir)) {
			if op, ok := strings.CutPrefix(name, "s3."); ok && strings.HasSuffix(op, "Input") {
				used[strings.TrimSuffix(op, "Input")] = true
			}
		}
	}
	for op := range used {
		if _, ok := s3Actions[op]; !ok {
			t.Errorf("the code calls S3 %s, which s3Actions does not map to an IAM action (so no custom role allows it)", op)
		}
	}
	for op := range s3Actions {
		if !used[op] {
			t.Errorf("s3Actions maps %s, which the code no longer calls: drop it from the roles", op)
		}
	}
}

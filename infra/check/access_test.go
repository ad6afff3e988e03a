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

// selectors lists every x.Name the nodes use (Name only), and every pkg.Name as "pkg.Name".
func selectors[N ast.Node](nodes []N) map[string]bool {
	out := map[string]bool{}
	for _, f := range nodes {
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

// calls reports whether the nodes call a method or function named name.
func calls[N ast.Node](nodes []N, name string) bool {
	found := false
	for _, f := range nodes {
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

// composed returns the code that builds fn's handlers in the one composition root,
// shared/runtime: the case of Routes for fn, and the body of Config.Executors when the main asks
// for executors. Empty when the main does not call runtime.Routes.
func composed(t *testing.T, fn string, main []*ast.File) []ast.Node {
	t.Helper()
	if !selectors(main)["runtime.Routes"] {
		return nil
	}
	var out []ast.Node
	constant := "Fn" + strings.ToUpper(fn[:1]) + fn[1:]
	for _, f := range parseDir(t, "shared/runtime") {
		ast.Inspect(f, func(n ast.Node) bool {
			switch v := n.(type) {
			case *ast.CaseClause:
				for _, e := range v.List {
					if sel, ok := e.(*ast.SelectorExpr); ok && sel.Sel.Name == constant {
						for _, st := range v.Body {
							out = append(out, st)
						}
					}
				}
			case *ast.FuncDecl:
				if v.Name.Name == "Executors" && calls(main, "Executors") {
					out = append(out, v.Body)
				}
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatalf("functions/%s/main.go calls runtime.Routes, which has no case for config.%s", fn, constant)
	}
	return out
}

// capabilitiesOf derives what a function's code calls from functions/<fn>/main.go, the code
// that composes its handlers (shared/runtime's Routes case and Executors, when the main uses
// them) and its handler package shared/<fn>:
//   - the object store, the state store or a COS client from runtime.Deps: objects
//   - the Event Notifications sender (Deps.Send): publish
//   - codeengine.New (the runner job executor): job runs
//   - db2saas.New (the Db2 on Cloud executor): Db2 backups
//   - Config.Keys (the Key Protect client) or Deps.Keys: keys
//   - a Delete call in the handler package (retention): delete
//   - a Rotate call in the handler package (managed rotation): rotate
func capabilitiesOf(t *testing.T, fn string) []Capability {
	t.Helper()
	main := parseDir(t, "functions/"+fn)
	code := []ast.Node{}
	for _, f := range main {
		code = append(code, f)
	}
	code = append(code, composed(t, fn, main)...)
	sel := selectors(code)
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
	if calls(code, "Keys") || sel["d.Keys"] {
		caps = append(caps, CapKeys)
	}
	handler := sel[fn+"."+strings.ToUpper(fn[:1])+fn[1:]] || sel[fn+".Handler"] || sel[fn+".Runner"] || sel[fn+".Restorer"]
	for _, f := range main {
		for _, im := range f.Imports {
			if strings.Trim(im.Path.Value, `"`) == modulePath+"/shared/"+fn {
				handler = true
			}
		}
	}
	if !handler {
		t.Fatalf("neither functions/%s/main.go nor its composition uses its handler package shared/%s", fn, fn)
	}
	handlerPkg := parseDir(t, "shared/"+fn)
	// Prune is the catalog's retention, which deletes; logchain.Check with Prune deletes the
	// archived logs no cataloged image needs (a DB2REMOTE archive is in the bucket).
	if calls(handlerPkg, "Delete") || calls(handlerPkg, "Prune") || selectors(handlerPkg)["logchain.Check"] {
		caps = append(caps, CapDelete)
	}
	if calls(handlerPkg, "Rotate") {
		caps = append(caps, CapRotate)
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

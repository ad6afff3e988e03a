package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// uploadChildEnv, when set, makes the test binary a child that uploads one file and exits
// (see uploadChild): a process of its own, so that its peak RSS is the upload's alone.
const uploadChildEnv = "KEYGUARD_UPLOAD_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(uploadChildEnv); spec != "" {
		os.Exit(uploadChild(spec))
	}
	os.Exit(m.Run())
}

// childSpec is what the child uploads, and where.
type childSpec struct {
	Endpoint, Access, Secret, Region, Bucket, Prefix, Key, Path string
}

// childResult is what the child reports on its standard output, one JSON line.
type childResult struct {
	Seconds float64 `json:"seconds"`
	Size    int64   `json:"size"`
	SHA256  string  `json:"sha256"`
	// BaseKiB is the child's resident set before the upload (VmRSS), PeakKiB its peak over its
	// whole life (VmHWM) once the upload is done.
	BaseKiB int64  `json:"base_kib"`
	PeakKiB int64  `json:"peak_kib"`
	Err     string `json:"err,omitempty"`
}

func uploadChild(spec string) int {
	var s childSpec
	out := json.NewEncoder(os.Stdout)
	fail := func(err error) int {
		out.Encode(childResult{Err: err.Error()})
		return 1
	}
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return fail(err)
	}
	client, err := objstore.NewCOSClient(objstore.Options{Endpoint: s.Endpoint, Region: s.Region, HMACKeyID: s.Access, HMACSecret: s.Secret})
	if err != nil {
		return fail(err)
	}
	u, err := upload.New(client, s.Bucket, s.Prefix, upload.Options{})
	if err != nil {
		return fail(err)
	}
	base := procStatus("VmRSS")
	t0 := time.Now()
	obj, err := u.UploadFile(context.Background(), s.Key, s.Path)
	d := time.Since(t0)
	if err != nil {
		return fail(err)
	}
	out.Encode(childResult{Seconds: d.Seconds(), Size: obj.Size, SHA256: obj.SHA256, BaseKiB: base, PeakKiB: procStatus("VmHWM")})
	return 0
}

// procStatus returns a kB field of /proc/self/status (-1 when it cannot).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// BenchmarkUploadFile1GiB uploads a 1 GiB file to versitygw with UploadFile and the default
// options, in a child process (this test binary again, see TestMain) whose peak resident set
// (VmHWM from /proc/self/status, over the child's whole life: Go runtime, SDK and the upload)
// is the figure; beside its floor measured in the same loop: one PutObject of the same file
// through the same SDK (which reads the file in place, once to sign it and once to send it).
// Throughput is of the upload call alone, timed in the child; ns/op is the child's whole run.
//
//	go test ./test/integration -run '^$' -bench BenchmarkUploadFile1GiB -benchtime 3x
func BenchmarkUploadFile1GiB(b *testing.B) {
	const size = 1 << 30
	ctx := context.Background()
	srv := s3server.Start(b)
	client := srv.Client(b)
	path := filepath.Join(b.TempDir(), "SALES.0.db2inst1.DBPART000.20240303010000.001")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, genStream(1024, size)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	_, want := localSum(b, genStream(1024, size))
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	objs := objstore.NewCOS(client, srv.Bucket, "bench")

	var upSecs, floorSecs float64
	var peak, base int64
	i := 0
	for b.Loop() {
		key := fmt.Sprintf("images/sales/20240303010000/file-%d", i)
		i++
		spec, _ := json.Marshal(childSpec{Endpoint: srv.Endpoint, Access: srv.AccessKey, Secret: srv.SecretKey, Region: srv.Region,
			Bucket: srv.Bucket, Prefix: "bench", Key: key, Path: path})
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), uploadChildEnv+"="+string(spec))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.Output() // timed: the child's whole run (ns/op); the upload alone is timed in it
		b.StopTimer()
		var r childResult
		if jerr := json.Unmarshal(stdout, &r); jerr != nil || err != nil || r.Err != "" {
			b.Fatalf("child: %v, %v, %s: %s", err, jerr, r.Err, stdout)
		}
		if r.Size != size || r.SHA256 != want {
			b.Fatalf("UploadFile stored %d bytes, sha256 %s; want %d, %s", r.Size, r.SHA256, size, want)
		}
		upSecs += r.Seconds
		peak, base = max(peak, r.PeakKiB), max(base, r.BaseKiB)
		if err := objs.Delete(ctx, key); err != nil {
			b.Fatal(err)
		}
		// The floor: one PUT of the same bytes, read in place.
		fh, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		_, err = client.PutObjectWithContext(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("bench/floor"),
			Body: fh, ContentLength: aws.Int64(size)})
		floorSecs += time.Since(t0).Seconds()
		fh.Close()
		if err != nil {
			b.Fatal(err)
		}
		if err := objs.Delete(ctx, "floor"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(i)
	b.ReportMetric(size*n/1e6/upSecs, "upload-MB/s")
	b.ReportMetric(size*n/1e6/floorSecs, "floor-put-MB/s")
	b.ReportMetric(upSecs/floorSecs, "upload/floor")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(base)/1024, "base-RSS-MiB")
}

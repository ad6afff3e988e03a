package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// TestCatalogContractVersitygw runs the catalog contract over objstore.COS against versitygw
// through ibm-cos-sdk-go: create-only entries (If-None-Match: *), idempotent retries, strict
// listing, deletion of entries and their images.
func TestCatalogContractVersitygw(t *testing.T) {
	srv := s3server.Start(t)
	client := srv.Client(t)
	catalogtest.Run(t, func(t *testing.T) objstore.Store {
		return objstore.NewCOS(client, srv.Bucket, uniquePrefix())
	})
}

// TestCatalogWithUploadedImagesVersitygw plays a week of one database against versitygw the
// way the runner and the completion handler will: upload each image, record it in the catalog
// under the same prefix, then apply retention and delete what it drops. The images of dropped
// entries are gone from the bucket, those of kept entries verify, and the newest chain plans.
func TestCatalogWithUploadedImagesVersitygw(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	client := srv.Client(t)
	prefix := uniquePrefix()
	cat := catalog.New(objstore.NewCOS(client, srv.Bucket, prefix))
	up, err := upload.New(client, srv.Bucket, prefix, upload.Options{PartSize: upload.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 3, 3, 1, 0, 0, 0, time.UTC) // a Sunday
	var lastFull, last string
	for d := range 15 {
		for _, hour := range []int{1, 13} {
			at := start.AddDate(0, 0, d).Add(time.Duration(hour-1) * time.Hour)
			ts := catalog.Timestamp(at)
			typ, parent := events.Delta, last
			switch {
			case hour == 1 && at.Weekday() == time.Sunday:
				typ, parent = events.Full, ""
			case hour == 1:
				typ, parent = events.Incremental, lastFull
			}
			name := fmt.Sprintf("SALES.0.db2inst1.DBPART000.%s.001", ts)
			obj, err := up.Upload(ctx, catalog.ImageKey("sales", ts, name), genStream(uint64(d*100+hour), 64<<10), -1)
			if err != nil {
				t.Fatal(err)
			}
			e := catalogtest.Sample("sales", ts, typ, parent)
			e.Images = []catalog.Object{catalog.Object(obj)}
			e.SizeBytes = obj.Size
			if err := cat.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
			if err := cat.Put(ctx, e); err != nil { // a redelivered event
				t.Fatalf("second Put of the same entry: %v", err)
			}
			last = ts
			if typ == events.Full {
				lastFull = ts
			}
		}
	}
	entries, err := cat.List(ctx, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 30 {
		t.Fatalf("List gave %d entries, want 30", len(entries))
	}
	now := start.AddDate(0, 0, 15)
	keep, drop := catalog.Retain(entries, catalog.RetentionPolicy{KeepFulls: 2}, now, nil)
	if len(drop) == 0 || len(keep) == 0 {
		t.Fatalf("retention kept %d and dropped %d", len(keep), len(drop))
	}
	for _, e := range drop {
		if err := cat.Delete(ctx, "sales", e.ImageTimestamp); err != nil {
			t.Fatal(err)
		}
	}
	after, err := cat.List(ctx, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(catalogtest.Names(after)) != fmt.Sprint(catalogtest.Names(keep)) {
		t.Errorf("after retention the catalog holds %v\nwant %v", catalogtest.Names(after), catalogtest.Names(keep))
	}
	for _, e := range drop {
		_, err := client.HeadObjectWithContext(ctx, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(prefix + "/" + e.Images[0].Key)})
		if err == nil {
			t.Errorf("image of dropped %s is still stored", e.Name())
		}
	}
	for _, e := range keep {
		if _, err := up.Verify(ctx, e.Images[0].Key, e.Images[0].SHA256); err != nil {
			t.Errorf("image of kept %s: %v", e.Name(), err)
		}
	}
	plan, err := catalog.PlanRestore(after, time.Time{}, func(string, string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if plan.Target != last || plan.Images[0].Type != events.Full {
		t.Errorf("plan = %+v", plan)
	}
	if _, err := cat.Get(ctx, "sales", drop[0].ImageTimestamp); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Get of a dropped entry = %v, want ErrNotFound", err)
	}
}

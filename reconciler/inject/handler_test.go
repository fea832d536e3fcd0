package inject

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/gitmesh/gitmesh/schema/model"
)

func review(t *testing.T, h http.Handler, req admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &req})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil || out.Response.UID != req.UID {
		t.Fatalf("response %+v does not answer uid %q", out.Response, req.UID)
	}
	return out.Response
}

func podRequest(t *testing.T, name string) admissionv1.AdmissionRequest {
	raw, err := json.Marshal(readPod(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return admissionv1.AdmissionRequest{
		UID: "u-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
		Namespace: "bookinfo", Object: runtime.RawExtension{Raw: raw},
	}
}

func TestHandler(t *testing.T) {
	var mesh *model.Mesh
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	unin := NewUninjected(time.Hour)
	h := Handler(HandlerOptions{Mesh: func() *model.Mesh { return mesh }, Options: Options{NativeSidecars: true},
		Uninjected: unin, Now: func() time.Time { return t0 }})

	// Before the first revision: refused, so the controller retries.
	if r := review(t, h, podRequest(t, "reviews")); r.Allowed || r.Result == nil || r.Result.Code != http.StatusServiceUnavailable {
		t.Fatalf("no mesh: got %+v, want a 503 refusal", r)
	}
	mesh = testMesh()
	r := review(t, h, podRequest(t, "reviews"))
	if !r.Allowed || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch || len(r.Patch) == 0 {
		t.Fatalf("got %+v, want an allowed JSON patch", r)
	}
	r = review(t, h, podRequest(t, "unknown-service"))
	if !r.Allowed || r.Patch != nil || len(r.Warnings) != 1 {
		t.Fatalf("unmatched: got %+v, want allowed, no patch, one warning", r)
	}
	// The drift report hears of it, for an hour.
	got := unin.List(t0)
	if len(got) != 1 || got[0].Namespace != "bookinfo" || got[0].Pod != "mystery" || !strings.Contains(got[0].Reason, `label app="mystery"`) {
		t.Fatalf("uninjected %+v", got)
	}
	if got := unin.List(t0.Add(61 * time.Minute)); len(got) != 0 {
		t.Fatalf("still reported after the window: %+v", got)
	}
	// A malformed capture annotation is the pod's author's to fix.
	if r := review(t, h, podRequest(t, "bad-annotation")); r.Allowed || r.Result == nil || r.Result.Code != http.StatusBadRequest ||
		!strings.Contains(r.Result.Message, "gitmesh.io/exclude-inbound-ports") {
		t.Fatalf("bad annotation: got %+v, want a 400 naming the annotation", r)
	}
	// Anything but a pod creation passes untouched.
	upd := podRequest(t, "reviews")
	upd.Operation = admissionv1.Update
	if r := review(t, h, upd); !r.Allowed || r.Patch != nil {
		t.Fatalf("update: got %+v", r)
	}
	// A body that is not a review is a client error.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, bytes.NewReader([]byte("{"))))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("garbage: status %d", rec.Code)
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, c := range []struct {
		major, minor string
		want         bool
	}{{"1", "29", true}, {"1", "28", false}, {"1", "33+", true}, {"1", "28+", false}, {"2", "0", true}, {"", "", false}} {
		if got := versionAtLeast(c.major, c.minor, 1, 29); got != c.want {
			t.Errorf("%s.%s: %v, want %v", c.major, c.minor, got, c.want)
		}
	}
}

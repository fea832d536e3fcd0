package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Path is where the handler is mounted on the webhook port.
const Path = "/inject"

// maxReviewBytes bounds a request body: the API server caps objects at
// 3 MiB, and a review carries the object once (twice on update).
const maxReviewBytes = 8 << 20

// HandlerOptions configure Handler.
type HandlerOptions struct {
	// Mesh returns the served mesh, nil before the first good revision.
	Mesh    func() *model.Mesh
	Options Options
	Logger  *slog.Logger
	// Uninjected, when set, records the pods admitted without a sidecar
	// because they name no declared service or version.
	Uninjected *Uninjected
	// Now is the clock for Uninjected; nil means time.Now.
	Now func() time.Time
}

// Handler serves admission/v1 AdmissionReviews for pod creation. It admits
// every pod it can decode: injected, or unchanged with a warning when the
// pod names no service of the mesh. It refuses only while no mesh
// revision has been served, so that a controller retries the pod later
// instead of running it outside the mesh for good.
func Handler(o HandlerOptions) http.Handler {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "use POST with an admission.k8s.io/v1 AdmissionReview", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
		if err != nil || len(body) > maxReviewBytes {
			http.Error(w, "request body unreadable or too large", http.StatusRequestEntityTooLarge)
			return
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, fmt.Sprintf("not an AdmissionReview: %v", err), http.StatusBadRequest)
			return
		}
		resp := admit(review.Request, o, log)
		resp.UID = review.Request.UID
		out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
		if out.APIVersion == "" {
			out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(out); err != nil {
			log.Warn("write admission response", "err", err)
		}
	})
}

// admit decides one request.
func admit(req *admissionv1.AdmissionRequest, o HandlerOptions, log *slog.Logger) *admissionv1.AdmissionResponse {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		return allow
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(http.StatusBadRequest, fmt.Sprintf("gitmesh: decode pod: %v", err))
	}
	var mesh *model.Mesh
	if o.Mesh != nil {
		mesh = o.Mesh()
	}
	res, err := Inject(&pod, req.Namespace, mesh, o.Options)
	if errors.Is(err, ErrInvalid) {
		return deny(http.StatusBadRequest, "gitmesh: "+err.Error())
	}
	if err != nil {
		log.Warn("injection refused", "namespace", req.Namespace, "pod", pod.Name+pod.GenerateName, "err", err)
		return deny(http.StatusServiceUnavailable, "gitmesh: cannot inject the sidecar: "+err.Error())
	}
	allow.Warnings = res.Warnings
	if res.Unmatched && o.Uninjected != nil && (req.DryRun == nil || !*req.DryRun) {
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		name := pod.Name
		if name == "" {
			name = pod.GenerateName + "*"
		}
		o.Uninjected.Record(req.Namespace, name, res.Reason, now())
	}
	if res.Patch == nil {
		log.Debug("pod admitted unchanged", "namespace", req.Namespace, "pod", pod.Name+pod.GenerateName, "reason", res.Skipped)
		return allow
	}
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = res.Patch, &pt
	log.Info("sidecar injected", "namespace", req.Namespace, "pod", pod.Name+pod.GenerateName, "class", res.Class, "dry_run", req.DryRun != nil && *req.DryRun)
	return allow
}

func deny(code int32, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: code, Message: msg,
	}}
}

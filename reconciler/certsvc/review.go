package certsvc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ServiceAccount is the identity a token proves.
type ServiceAccount struct {
	Namespace, Name string
}

// Reviewer checks a token and returns its service account. A token that
// is not valid (expired, wrong audience, deleted service account, not a
// service account) is a *RefusedError; any other error means the check
// could not be made.
type Reviewer interface {
	Review(ctx context.Context, token string) (ServiceAccount, error)
}

// RefusedError is a token the reviewer checked and refused.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// KubeReviewer reviews tokens with the TokenReview API: the API server
// checks the signature, expiry, audience and that the service account
// (and the pod a token is bound to) still exists, so a deleted service
// account's tokens stop working at once.
type KubeReviewer struct {
	Client kubernetes.Interface
	// Audience is the audience tokens must carry; "" means Audience.
	Audience string
}

// serviceAccountPrefix is how the API server names a service account user.
const serviceAccountPrefix = "system:serviceaccount:"

// Review implements Reviewer.
func (k KubeReviewer) Review(ctx context.Context, token string) (ServiceAccount, error) {
	aud := k.Audience
	if aud == "" {
		aud = Audience
	}
	tr, err := k.Client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{aud}},
	}, metav1.CreateOptions{})
	if err != nil {
		return ServiceAccount{}, fmt.Errorf("token review: %w", err)
	}
	st := tr.Status
	if !st.Authenticated {
		reason := st.Error
		if reason == "" {
			reason = "not authenticated"
		}
		return ServiceAccount{}, &RefusedError{Reason: fmt.Sprintf("the API server says: %s", reason)}
	}
	// The API server only authenticates a token for the audiences asked;
	// check anyway, so a server that ignored them is not trusted blindly.
	if !slices.Contains(st.Audiences, aud) {
		return ServiceAccount{}, &RefusedError{Reason: fmt.Sprintf("token audiences %q do not include %q", st.Audiences, aud)}
	}
	rest, ok := strings.CutPrefix(st.User.Username, serviceAccountPrefix)
	ns, name, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || name == "" || strings.Contains(name, ":") {
		return ServiceAccount{}, &RefusedError{Reason: fmt.Sprintf("user %q is not a service account", st.User.Username)}
	}
	return ServiceAccount{Namespace: ns, Name: name}, nil
}

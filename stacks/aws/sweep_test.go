package aws

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/liftoff-dev/liftoff/internal/teardown"
)

// TestClassify: the AWS error codes that mean "in use" and "gone" are recognised.
func TestClassify(t *testing.T) {
	for code, want := range map[string]error{
		"DependencyViolation": teardown.ErrDependency, "ResourceInUse": teardown.ErrDependency, "InvalidNetworkInterface.InUse": teardown.ErrDependency,
		"InvalidGroup.NotFound": teardown.ErrNotFound, "LoadBalancerNotFound": teardown.ErrNotFound, "RepositoryNotFoundException": teardown.ErrNotFound,
		"UnauthorizedOperation": nil,
	} {
		err := classify(fmt.Errorf("operation error: %w", &smithy.GenericAPIError{Code: code, Message: "m"}))
		if want == nil {
			if errors.Is(err, teardown.ErrDependency) || errors.Is(err, teardown.ErrNotFound) {
				t.Errorf("%s classified as %v", code, err)
			}
			continue
		}
		if !errors.Is(err, want) || !strings.Contains(err.Error(), code) {
			t.Errorf("%s: %v, want %v", code, err, want)
		}
	}
}

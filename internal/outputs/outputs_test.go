package outputs

import (
	"reflect"
	"testing"
)

func TestDecode(t *testing.T) {
	got := Decode(map[string]any{KubeconfigContent: "", Context: "c", Registry: "r/app", RegistryInsecure: true,
		AppSecretManaged: true, RegistryPassword: "pw", ImagePullSecret: "pull", "unrelated": 3, PodCIDRs: "10.42.0.0/16, fd00::/48", IngressNamespaces: ""})
	want := Record{HasKubeconfig: true, Context: "c", Registry: "r/app", RegistryInsecure: true, AppSecretManaged: true, RegistryPassword: "pw", ImagePullSecret: "pull",
		PodCIDRs: []string{"10.42.0.0/16", "fd00::/48"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %+v, want %+v", got, want)
	}
	if d := Decode(nil); !reflect.DeepEqual(d, Record{}) {
		t.Errorf("Decode(nil) = %+v", d)
	}
	if EnvSecret("shop") != "shop-env" {
		t.Error("EnvSecret")
	}
}

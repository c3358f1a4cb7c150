package outputs

import "testing"

func TestDecode(t *testing.T) {
	got := Decode(map[string]any{KubeconfigContent: "", Context: "c", Registry: "r/app", RegistryInsecure: true,
		AppSecretManaged: true, RegistryPassword: "pw", ImagePullSecret: "pull", "unrelated": 3})
	want := Record{HasKubeconfig: true, Context: "c", Registry: "r/app", RegistryInsecure: true, AppSecretManaged: true, RegistryPassword: "pw", ImagePullSecret: "pull"}
	if got != want {
		t.Errorf("Decode = %+v, want %+v", got, want)
	}
	if d := Decode(nil); d != (Record{}) {
		t.Errorf("Decode(nil) = %+v", d)
	}
	if EnvSecret("shop") != "shop-env" {
		t.Error("EnvSecret")
	}
}

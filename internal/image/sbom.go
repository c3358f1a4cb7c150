package image

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// SBOMMediaType is the artifact type of the SBOM attached to each platform image.
const SBOMMediaType = "application/spdx+json"

// spdx is the part of SPDX 2.3 JSON that liftoff writes.
type spdx struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      spdxCreation   `json:"creationInfo"`
	Packages          []spdxPackage  `json:"packages"`
	Relationships     []spdxRelation `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string    `json:"name"`
	SPDXID           string    `json:"SPDXID"`
	VersionInfo      string    `json:"versionInfo,omitempty"`
	DownloadLocation string    `json:"downloadLocation"`
	FilesAnalyzed    bool      `json:"filesAnalyzed"`
	Checksums        []spdxSum `json:"checksums,omitempty"`
	ExternalRefs     []spdxRef `json:"externalRefs,omitempty"`
	Comment          string    `json:"comment,omitempty"`
	PrimaryPurpose   string    `json:"primaryPackagePurpose,omitempty"`
}

type spdxSum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelation struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]`)

func spdxID(prefix, s string) string {
	return "SPDXRef-" + prefix + "-" + spdxIDUnsafe.ReplaceAllString(s, "-")
}

// SBOM describes a Go binary from its embedded build info: the main module,
// every dependency with its version and go.sum hash, and the toolchain.
func SBOM(binaryPath string, binary []byte, platform string, src Source, created time.Time) ([]byte, error) {
	bi, err := buildinfo.ReadFile(binaryPath)
	if err != nil {
		return nil, fmt.Errorf("read build info of %s: %w", binaryPath, err)
	}
	sum := sha256.Sum256(binary)
	digest := hex.EncodeToString(sum[:])
	mainID := spdxID("Package", bi.Path)
	doc := spdx{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              fmt.Sprintf("%s (%s)", bi.Path, platform),
		DocumentNamespace: fmt.Sprintf("https://liftoff.dev/spdx/%s/%s", strings.ReplaceAll(bi.Path, "/", "."), digest),
		CreationInfo:      spdxCreation{Created: created.UTC().Format(time.RFC3339), Creators: []string{"Tool: liftoff", "Tool: " + bi.GoVersion}},
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		Name: bi.Path, SPDXID: mainID, VersionInfo: src.Version(), DownloadLocation: orNoAssertion(src.URL),
		PrimaryPurpose: "APPLICATION", Checksums: []spdxSum{{"SHA256", digest}},
		Comment: fmt.Sprintf("main package %s built for %s from revision %s", bi.Main.Path, platform, src.Revision),
	})
	doc.Relationships = append(doc.Relationships, spdxRelation{"SPDXRef-DOCUMENT", "DESCRIBES", mainID})
	goID := spdxID("Package", "golang-stdlib")
	doc.Packages = append(doc.Packages, spdxPackage{Name: "stdlib", SPDXID: goID, VersionInfo: bi.GoVersion, DownloadLocation: "https://go.dev/dl/",
		ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/stdlib@" + bi.GoVersion}}})
	doc.Relationships = append(doc.Relationships, spdxRelation{mainID, "DEPENDS_ON", goID})
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		id := spdxID("Package", m.Path+"-"+m.Version)
		p := spdxPackage{Name: m.Path, SPDXID: id, VersionInfo: m.Version, DownloadLocation: "https://proxy.golang.org/" + m.Path,
			ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + m.Path + "@" + m.Version}}}
		if m.Sum != "" {
			p.Comment = "go.sum " + m.Sum
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelation{mainID, "DEPENDS_ON", id})
	}
	return json.MarshalIndent(doc, "", "  ")
}

func orNoAssertion(s string) string {
	if s == "" {
		return "NOASSERTION"
	}
	return s
}

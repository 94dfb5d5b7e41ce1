package validate

import (
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/motoserver"
)

// TestGlueRegistryCheck: validate reads a source's Glue schema registry with
// the credentials the decoder will use, against moto with IAM on: a
// registry the credentials may read passes, one that does not exist is
// not_found, and credentials without glue permissions are access_denied with
// a hint naming what to grant. No secret key reaches the report.
func TestGlueRegistryCheck(t *testing.T) {
	isolate(t)
	moto := motoserver.Start(t, motoserver.Options{Users: []motoserver.User{
		{Name: "reader", Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["glue:GetRegistry","glue:GetSchemaVersion"],"Resource":"*"}]}`},
		{Name: "nobody"},
	}})
	moto.RegisterAvro(t, "shop", "orders", `{"type":"record","name":"O","fields":[{"name":"id","type":"long"}]}`)
	t.Setenv("AWS_ENDPOINT_URL_GLUE", moto.URL)

	for _, tc := range []struct {
		name, user, registry string
		ok                   bool
		class                Class
		errContains          string
	}{
		{name: "readable", user: "reader", registry: "shop", ok: true},
		{name: "missing registry", user: "reader", registry: "nope", class: ClassNotFound, errContains: `registry_name "nope" in region us-east-1`},
		{name: "no permission", user: "nobody", registry: "shop", class: ClassAccessDenied, errContains: "glue:GetRegistry on registry shop and glue:GetSchemaVersion on its schemas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := moto.Key(t, tc.user)
			t.Setenv("AWS_ACCESS_KEY_ID", k.ID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", k.Secret)
			ac, err := app.NewAWS(config.DefaultCallTimeout)
			if err != nil {
				t.Fatal(err)
			}
			src := config.Source{Name: "orders", Kinesis: config.Kinesis{Format: config.Format{Kind: config.FormatAvro, Avro: &config.Avro{
				Registry: &config.Registry{Glue: &config.GlueRegistry{RegistryName: tc.registry, Region: "us-east-1"}}}}}}
			v := &validator{cfg: &config.Config{Sources: []config.Source{src}}, rep: &Report{}, aws: ac}
			v.glueRegistry(t.Context(), src)
			if len(v.rep.Checks) != 1 {
				t.Fatalf("%d checks, want 1: %+v", len(v.rep.Checks), v.rep.Checks)
			}
			c := v.rep.Checks[0]
			line := c.String()
			if c.OK != tc.ok || (!tc.ok && c.Class != tc.class) {
				t.Fatalf("check %s; want ok %v class %q", line, tc.ok, tc.class)
			}
			if tc.ok && !strings.Contains(line, "arn:aws:glue:us-east-1:"+motoserver.Account+":registry/shop") {
				t.Errorf("passing check does not name the registry: %s", line)
			}
			if !strings.Contains(line, tc.errContains) {
				t.Errorf("check %s; want it to contain %q", line, tc.errContains)
			}
			if strings.Contains(line, k.Secret) {
				t.Errorf("secret key in the report: %s", line)
			}
		})
	}
}

package deploycheck

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// lakeBucketVar names the bucket in the environment of both init (which
// creates it) and the worker (whose config's s3 sinks write to it).
const lakeBucketVar = "LAKE_BUCKET"

// TestComposeLake checks the lake's wiring in docker-compose.yml: the worker
// config's s3 sinks write to the bucket init creates, before the workers
// start, on LocalStack's S3 (which LocalStack runs and its healthcheck waits
// for), addressing it by path as a host name without bucket subdomains needs.
func TestComposeLake(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	hostPath, _ := workerConfig(t, root, c) // also sets the worker's environment
	cfg, err := config.Load(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	var lakes []config.Sink
	for _, s := range cfg.Sinks {
		if s.S3 != nil {
			lakes = append(lakes, s)
		}
	}
	if len(lakes) == 0 {
		t.Fatalf("worker config %s has no s3 sink: the compose stack shows no lake", hostPath)
	}

	// init creates the bucket, and the workers start after it.
	in, w := c.Services["init"], c.Services["worker"]
	bucket := in.Environment[lakeBucketVar]
	if bucket == "" {
		t.Fatalf("init: %s is not set: nothing creates the lake's bucket", lakeBucketVar)
	}
	script := entrypointScript(t, root, in)
	if !regexp.MustCompile(`create-bucket --bucket "?\$\{?` + lakeBucketVar + `\b`).MatchString(script) {
		t.Errorf("init's script does not create-bucket --bucket \"$%s\"", lakeBucketVar)
	}
	if got := w.DependsOn["init"]; got != "service_completed_successfully" {
		t.Errorf("worker: depends_on init condition %q: the workers would write before the bucket exists", got)
	}

	// The SDK, as the sink builds its client (sinkreg.s3Client: the standard
	// configuration, path style from the config), sends each sink's calls to
	// the bucket on LocalStack.
	localstack := "http://localstack:" + strconv.Itoa(wantServices["localstack"])
	if got := w.Environment["AWS_ENDPOINT_URL_S3"]; got != localstack {
		t.Errorf("worker: AWS_ENDPOINT_URL_S3 %q, want the localstack service, %s", got, localstack)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	datasets := map[string]bool{}
	for _, ds := range cfg.Datasets {
		datasets[ds.Sink] = true
	}
	for _, s := range lakes {
		if !datasets[s.Name] {
			t.Errorf("sink %s: no dataset writes to it, so the workers never open it", s.Name)
		}
		if s.S3.Bucket != bucket {
			t.Errorf("sink %s writes to bucket %q, but init creates %q", s.Name, s.S3.Bucket, bucket)
		}
		client := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = s.S3.ForcePathStyle })
		o := client.Options()
		ep, err := o.EndpointResolverV2.ResolveEndpoint(context.Background(), s3.EndpointParameters{
			Bucket: aws.String(s.S3.Bucket), Region: aws.String(o.Region), Endpoint: o.BaseEndpoint, ForcePathStyle: aws.Bool(o.UsePathStyle),
		}.WithDefaults())
		if err != nil {
			t.Errorf("sink %s: resolve its S3 endpoint: %v", s.Name, err)
			continue
		}
		if want := localstack + "/" + bucket; ep.URI.String() != want {
			t.Errorf("sink %s: the SDK sends its calls to %s, want %s (LocalStack, the bucket in the path: force_path_style: true)", s.Name, ep.URI.String(), want)
		}
	}

	// LocalStack runs S3, and is healthy only once S3 is up.
	ls := c.Services["localstack"]
	if !slices.Contains(strings.Split(ls.Environment["SERVICES"], ","), "s3") {
		t.Errorf("localstack: SERVICES %q lacks s3", ls.Environment["SERVICES"])
	}
	if ls.Healthcheck == nil || !strings.Contains(strings.Join(ls.Healthcheck.Test, " "), `"s3"`) {
		t.Errorf("localstack: its healthcheck does not wait for s3")
	}
}

// entrypointScript is the text of the mounted script a service's entrypoint
// runs.
func entrypointScript(t *testing.T, root string, s *service) string {
	t.Helper()
	for _, m := range s.Volumes {
		if m.Type == "bind" && slices.Contains(s.Entrypoint, m.Target) {
			b, err := os.ReadFile(filepath.Join(root, m.Source))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("the entrypoint %q runs no mounted script", s.Entrypoint)
	return ""
}

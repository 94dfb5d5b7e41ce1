package emulators

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// ExternalEnv names the variable that points tests at endpoints someone else
// runs (LocalStack from docker-compose.yml, say) instead of emulators they
// start themselves: with ExternalEnv=1, External returns the Kinesis and
// DynamoDB endpoints named by the SDK's standard variables. It is an explicit
// switch, not just AWS_ENDPOINT_URL, so that a developer who has
// AWS_ENDPOINT_URL set for something else still gets the local emulators
// from `make test`.
const ExternalEnv = "KINESIS_INGEST_EXTERNAL"

// ExternalEnabled reports whether ExternalEnv is set to 1 (or true).
func ExternalEnabled() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(ExternalEnv)))
	return v == "1" || v == "true"
}

// External returns Servers standing for the endpoints of an emulator that runs
// elsewhere, when ExternalEnabled: Kinesis at AWS_ENDPOINT_URL_KINESIS, else
// AWS_ENDPOINT_URL; DynamoDB at AWS_ENDPOINT_URL_DYNAMODB, else
// AWS_ENDPOINT_URL. It checks that each answers (ListStreams, ListTables)
// within ctx or 30 seconds. It returns nil, nil, nil when ExternalEnv is not
// set, and an error when it is but an endpoint is missing or does not answer:
// the tests never fall back to real AWS.
//
// Such a Server has only Name and Endpoint: Stop and Kill do nothing, LogTail
// has no log, and Restart cannot work, so tests that restart an emulator must
// skip with external endpoints.
func External(ctx context.Context) (kin, ddb *Server, err error) {
	if !ExternalEnabled() {
		return nil, nil, nil
	}
	endpoint := func(service string) (string, error) {
		if v := os.Getenv("AWS_ENDPOINT_URL_" + service); v != "" {
			return v, nil
		}
		if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("emulators: %s=1 but neither AWS_ENDPOINT_URL nor AWS_ENDPOINT_URL_%s is set: name the endpoints to test against (LocalStack: AWS_ENDPOINT_URL=http://localhost:4566), or unset %s to start local emulators", ExternalEnv, service, ExternalEnv)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kin = &Server{Name: "external Kinesis", probe: probeKinesis}
	ddb = &Server{Name: "external DynamoDB", probe: probeDynamo}
	for _, s := range []struct {
		srv     *Server
		service string
	}{{kin, "KINESIS"}, {ddb, "DYNAMODB"}} {
		if s.srv.Endpoint, err = endpoint(s.service); err != nil {
			return nil, nil, err
		}
		if err := waitAnswer(ctx, s.srv); err != nil {
			return nil, nil, err
		}
	}
	return kin, ddb, nil
}

// waitAnswer probes s until it answers or ctx is done.
func waitAnswer(ctx context.Context, s *Server) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.probe(pctx, s.Endpoint)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("emulators: %s at %s does not answer (%v): start it (LocalStack: docker compose up -d localstack) or fix the endpoint variables: %w", s.Name, s.Endpoint, err, context.Cause(ctx))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

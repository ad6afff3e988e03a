package stack

import (
	_ "embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2saas"
	"github.com/keyguard-dev/keyguard/shared/notify"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
	"github.com/keyguard-dev/keyguard/test/db2saasemu"
	"github.com/keyguard-dev/keyguard/test/simdb2"
)

// DevYAML is the local stack's fleet policy (fleet.dev.yaml): a simulated database, a Db2 on
// Cloud database on its emulator, and a self-managed one on the fake db2 command line.
//
//go:embed fleet.dev.yaml
var DevYAML []byte

// DevFleet loads DevYAML.
func DevFleet() (*config.Fleet, error) { return LoadFleet(DevYAML) }

// LoadFleet loads a fleet policy as the local stack does: the simulated Db2 is an executor here
// (and only here).
func LoadFleet(yaml []byte) (*config.Fleet, error) {
	return config.Load(yaml, config.WithExecutors(simdb2.Name))
}

// db2saas starts the Db2 on Cloud emulator on the stack's clock, with the fleet's db2saas
// instances, and returns the real db2saas executor on it (nil when the fleet has none).
func (s *Stack) db2saas(apiKey string, log *slog.Logger) (scheduler.Executor, error) {
	var instances []string
	for _, db := range s.Fleet.Databases {
		if db.Executor == config.ExecDb2SaaS {
			instances = append(instances, db.Instance)
		}
	}
	if len(instances) == 0 {
		return nil, nil
	}
	s.SaaS = db2saasemu.New(db2saasemu.Options{IAM: s.EN.IAM(), Clock: s.Clock, Instances: instances, Duration: 25 * time.Minute, Logger: log})
	base, err := s.serve(s.SaaS)
	if err != nil {
		return nil, err
	}
	s.saasURL = base
	auth, err := notify.NewIAMAuthenticator(apiKey, base)
	if err != nil {
		return nil, err
	}
	client, err := db2saas.New(db2saas.Options{URL: base + db2saasemu.ContextRoot, Authenticator: auth, Clock: s.Clock, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("db2saas client on the emulator: %w", err)
	}
	return &db2saas.Executor{Client: client, Clock: s.Clock, Log: log, Instances: db2saas.InstancesFromFleet(s.Fleet)}, nil
}

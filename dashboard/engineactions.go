package dashboard

import (
	"context"
	"fmt"

	"github.com/slipwayhq/slipway/controller/stack"
)

// ActionEngine is what EngineActions needs of the stack engine.
// *stack.Engine satisfies it.
type ActionEngine interface {
	Inspect(ctx context.Context, project string) (*stack.Environment, error)
	Down(ctx context.Context, project string) error
	Stop(ctx context.Context, project string) error
	Start(ctx context.Context, project string) error
}

// EngineActions act straight on the engine, for `slipway serve` in local
// mode: there is no controller to queue them, and no source to redeploy
// from. Each action is Done when it returns.
type EngineActions struct{ Engine ActionEngine }

func (a EngineActions) exists(ctx context.Context, project string) error {
	env, err := a.Engine.Inspect(ctx, project)
	if err != nil {
		return err
	}
	if env == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, project)
	}
	return nil
}

// Redeploy is not possible in local mode: ErrUnsupported.
func (a EngineActions) Redeploy(ctx context.Context, project string) (Outcome, error) {
	if err := a.exists(ctx, project); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%w: in local mode, run slipway up again", ErrUnsupported)
}

// Destroy removes the environment (stack.Engine.Down).
func (a EngineActions) Destroy(ctx context.Context, project string) (Outcome, error) {
	return a.do(ctx, project, a.Engine.Down)
}

// Sleep stops the environment's containers (stack.Engine.Stop).
func (a EngineActions) Sleep(ctx context.Context, project string) (Outcome, error) {
	return a.do(ctx, project, a.Engine.Stop)
}

// Wake starts the environment's containers (stack.Engine.Start).
func (a EngineActions) Wake(ctx context.Context, project string) (Outcome, error) {
	return a.do(ctx, project, a.Engine.Start)
}

func (a EngineActions) do(ctx context.Context, project string, act func(context.Context, string) error) (Outcome, error) {
	if err := a.exists(ctx, project); err != nil {
		return "", err
	}
	if err := act(ctx, project); err != nil {
		return "", err
	}
	return Done, nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/snapshot"
	"github.com/slimbuild/slimbuild/internal/store"
)

// workspace is the mounted snapshot of one filesystem step, and what the step
// produced when it wrote its layer itself.
type workspace struct {
	Active
	// direct is set when the step wrote its layer itself (layer, nil for none)
	// or committed a tree of its own (snapshot) instead of leaving its changes
	// in the upper directory.
	direct   bool
	layer    *store.LayerInfo
	snapshot *v1.Hash
}

// snapshotter makes the build's snapshots: overlays in its temp dir under the
// store, unless a test gave the builder its own.
func (b *builder) snapshotter() (Snapshotter, error) {
	if b.overlay != nil {
		return b.overlay, nil
	}
	if os.Geteuid() != 0 {
		return nil, ErrNeedRoot
	}
	tmp, err := b.tempDir()
	if err != nil {
		return nil, err
	}
	return overlays{snapshot.Snapshotter{Dir: tmp}}, nil
}

// mountWorkspace prepares a writable snapshot over layers.
func (b *builder) mountWorkspace(layers []v1.Layer) (*workspace, error) {
	lowers, err := b.unpack.LowerDirs(layers)
	if err != nil {
		return nil, err
	}
	ws, err := b.prepare(lowers)
	if err != nil && errors.Is(err, os.ErrNotExist) {
		// Another process promoted a snapshot between the lookup and the mount:
		// its tree is now under the layer's diffID.
		if lowers, err = b.unpack.LowerDirs(layers); err != nil {
			return nil, err
		}
		ws, err = b.prepare(lowers)
	}
	return ws, err
}

// mountDirView prepares a writable, throwaway snapshot over a host directory.
func (b *builder) mountDirView(dir string) (*workspace, error) {
	return b.prepare([]string{dir})
}

func (b *builder) prepare(lowers []string) (*workspace, error) {
	sn, err := b.snapshotter()
	if err != nil {
		return nil, err
	}
	a, err := sn.Prepare(lowers)
	if err != nil {
		return nil, err
	}
	return &workspace{Active: a}, nil
}

// commit turns what the step changed into the content of its cache record: the
// upper directory committed as a snapshot (its blob is made on demand, see
// snaplayer.go), or the layer the step wrote itself. The record is empty when the
// step changed nothing.
func (b *builder) commit(ws *workspace) (store.StepRecord, error) {
	if ws.direct {
		ws.Remove()
		return store.StepRecord{Layer: ws.layer, Snapshot: ws.snapshot}, nil
	}
	var rec store.StepRecord
	_, err := ws.Commit(func(upper string) error {
		id, err := b.st.CommitTree(upper, b.opts.SourceDateEpoch)
		rec.Snapshot = &id
		return err
	})
	return rec, err
}

// fsStep runs fn on a writable overlay of s, commits what it changed and records
// it under key. It serves the step from the cache when it can.
func (b *builder) fsStep(ctx context.Context, s *stageState, st *step, key string, fn func(ws *workspace) error) error {
	key = b.epochKey(key)
	useCache := !b.opts.noCache(st.stage)
	if rec, ok := b.cacheGet(key); ok && useCache {
		if err := b.applyRecord(s, st, key, rec); err == nil {
			b.logStep(st, key, rec, lastLayer(s, rec))
			b.finished(st, StepCached)
			return nil
		}
	}
	if rec, l, ok := b.sharedGet(key); ok && useCache {
		b.applyLayer(s, st, key, rec, l)
		b.logStep(st, key, rec, l)
		b.finished(st, StepCached)
		return nil
	}
	b.emit(Event{Kind: StepStart, Stage: st.stage.ID(), Step: st.n, Total: st.total, Text: st.text})
	ws, err := b.mountWorkspace(s.layers)
	if err != nil {
		return b.fail(st, err)
	}
	defer ws.Remove()
	if err := fn(ws); err != nil {
		var stepErr *StepError
		if errors.As(err, &stepErr) || errors.Is(err, context.Canceled) {
			return err
		}
		return b.fail(st, err)
	}
	rec, err := b.commit(ws)
	if err != nil {
		return b.fail(st, err)
	}
	rec.Created = time.Now().UTC().Truncate(time.Second)
	if e := b.opts.SourceDateEpoch; e != nil {
		rec.Created = *e // the key holds the epoch, so the record can too
	}
	if err := b.st.PutStep(key, rec); err != nil {
		return b.fail(st, fmt.Errorf("saving cache record: %w", err))
	}
	if err := b.applyRecord(s, st, key, &rec); err != nil {
		return b.fail(st, err)
	}
	b.logStep(st, key, &rec, lastLayer(s, &rec))
	b.finished(st, StepDone)
	return nil
}

// applyRecord moves s to the state a filesystem step produced.
func (b *builder) applyRecord(s *stageState, st *step, key string, rec *store.StepRecord) error {
	var l v1.Layer
	switch {
	case rec.Snapshot != nil:
		l = b.snaps.StepLayer(key, *rec)
	case rec.Layer != nil:
		var err error
		if l, err = b.st.Layer(*rec.Layer); err != nil {
			return err
		}
	}
	b.applyLayer(s, st, key, rec, l)
	return nil
}

// applyLayer moves s to the state a filesystem step produced, with l as the
// content of rec's layer (nil for none). The config's diffIDs are filled when
// the image is assembled, from the layers.
func (b *builder) applyLayer(s *stageState, st *step, key string, rec *store.StepRecord, l v1.Layer) {
	if l != nil {
		s.layers = append(s.layers, l)
		s.Image.RootFS.Type = "layers"
		t := rec.Created
		s.AddHistory(st.cmd, &t)
	} else {
		s.AddHistory(st.cmd, nil)
	}
	s.key = key
}

// lastLayer is the layer rec added to s, nil when it added none.
func lastLayer(s *stageState, rec *store.StepRecord) v1.Layer {
	if (rec.Layer == nil && rec.Snapshot == nil) || len(s.layers) == 0 {
		return nil
	}
	return s.layers[len(s.layers)-1]
}

// StepError is a failed RUN: the command, its exit code and the tail of its output.
type StepError struct {
	File     string
	Line     int
	Stage    string
	Command  string
	ExitCode int
	Tail     []string
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("%s:%d: %s: %s: exit code %d", e.File, e.Line, e.Stage, e.Command, e.ExitCode)
	if len(e.Tail) > 0 {
		msg += "\nlast lines of output:"
		for _, l := range e.Tail {
			msg += "\n  " + l
		}
	}
	return msg
}

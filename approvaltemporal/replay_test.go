package approvaltemporal_test

import (
	"context"
	"testing"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvaltemporal"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// waitHistory is the history of a run of approveAndTransfer that guarded
// its action (the Guard activity answered guarded) and then waited: the
// worker died during the wait. guardType is the Guard activity's type.
func waitHistory(t *testing.T, a approval.Action, opts approvaltemporal.Options, guarded approvaltemporal.Result, guardType string) *historypb.History {
	t.Helper()
	dc := converter.GetDefaultDataConverter()
	input, err := dc.ToPayloads(a, opts)
	require.NoError(t, err)
	result, err := dc.ToPayloads(guarded)
	require.NoError(t, err)
	tq := &taskqueuepb.TaskQueue{Name: "payments", Kind: enumspb.TASK_QUEUE_KIND_NORMAL}
	ev := func(id int64, typ enumspb.EventType) *historypb.HistoryEvent {
		return &historypb.HistoryEvent{EventId: id, EventType: typ}
	}
	workflowTask := func(first int64) []*historypb.HistoryEvent {
		s, st, c := ev(first, enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED), ev(first+1, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED), ev(first+2, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
		s.Attributes = &historypb.HistoryEvent_WorkflowTaskScheduledEventAttributes{WorkflowTaskScheduledEventAttributes: &historypb.WorkflowTaskScheduledEventAttributes{TaskQueue: tq}}
		st.Attributes = &historypb.HistoryEvent_WorkflowTaskStartedEventAttributes{WorkflowTaskStartedEventAttributes: &historypb.WorkflowTaskStartedEventAttributes{ScheduledEventId: first}}
		c.Attributes = &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{ScheduledEventId: first, StartedEventId: first + 1}}
		return []*historypb.HistoryEvent{s, st, c}
	}

	started := ev(1, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
	started.Attributes = &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
		WorkflowType: &commonpb.WorkflowType{Name: "approveAndTransfer"}, TaskQueue: tq, Input: input,
		OriginalExecutionRunId: "run-1", FirstExecutionRunId: "run-1",
	}}
	events := append([]*historypb.HistoryEvent{started}, workflowTask(2)...)
	scheduled := ev(5, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
	scheduled.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
		ActivityId: "5", ActivityType: &commonpb.ActivityType{Name: guardType}, TaskQueue: tq,
		StartToCloseTimeout: durationpb.New(approvaltemporal.DefaultActivityTimeout), WorkflowTaskCompletedEventId: 4,
	}}
	actStarted := ev(6, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED)
	actStarted.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{ScheduledEventId: 5, Attempt: 1}}
	completed := ev(7, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
	completed.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{
		Result: result, ScheduledEventId: 5, StartedEventId: 6,
	}}
	events = append(events, scheduled, actStarted, completed)
	events = append(events, workflowTask(8)...)
	timer := ev(11, enumspb.EVENT_TYPE_TIMER_STARTED)
	timer.Attributes = &historypb.HistoryEvent_TimerStartedEventAttributes{TimerStartedEventAttributes: &historypb.TimerStartedEventAttributes{
		TimerId: "11", StartToFireTimeout: durationpb.New(opts.PollInterval), WorkflowTaskCompletedEventId: 10,
	}}
	events = append(events, timer)
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, e := range events {
		e.EventTime = timestamppbOf(at)
	}
	return &historypb.History{Events: events}
}

// A workflow replayed from its history after a restart makes no request:
// the replay runs the workflow code alone (no activity runs, and Approve
// does no I/O in workflow code), and its commands match the history.
func TestApproveReplayMakesNoSecondRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a, opts := wire("5000"), signalled
	// The first execution's Guard activity, before the worker died.
	acts := &approvaltemporal.Activities{Gate: f.gate}
	guarded, err := acts.Guard(context.Background(), approvaltemporal.Bind(a, "wf-replay", "run-1", "wire-transfer"))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, guarded.Status)

	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(approveAndTransfer, workflow.RegisterOptions{Name: "approveAndTransfer"})
	replay := func(h *historypb.History) error {
		return replayer.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
			OriginalExecution: workflow.Execution{ID: "wf-replay", RunID: "run-1"},
		})
	}
	require.NoError(t, replay(waitHistory(t, a, opts, guarded, approvaltemporal.ActivityGuard)))
	require.Len(t, f.all(), 1, "the replay made no request")
	require.Equal(t, guarded.RequestID, f.pending().ID)

	// The replayer does check: a history whose first activity is another
	// one does not match the workflow's commands.
	require.Error(t, replay(waitHistory(t, a, opts, guarded, "approval.Other")))
}

func timestamppbOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

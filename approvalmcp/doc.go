// Package approvalmcp gates the tool calls of an MCP server (the official
// Go SDK, github.com/modelcontextprotocol/go-sdk) through an
// approval.Gate: a call to a gated tool runs only once people approved
// it, exactly once per approval, with the arguments they approved.
//
//	mw, err := approvalmcp.Middleware(approvalmcp.Options{
//		Gate:  gate,
//		Rules: []approvalmcp.Rule{{Tools: "drop_*", Mode: approvalmcp.Block, Wait: 30 * time.Second}},
//	})
//	if err != nil { ... }
//	server.AddReceivingMiddleware(mw)
//
// # What is gated
//
// The middleware sees every request the server receives and looks only at
// tools/call. The first Rule whose Tools glob matches the tool's name, and
// whose When (if set) returns true or an error, gates the call; a call no
// rule gates goes straight to the tool. The rules choose which calls ask
// the gate; the gate's policies choose who must approve them. A gated
// call is the action
//
//	Name:        "mcp:tool:" + tool name (ActionPrefix), in lower case
//	RequestedBy: the caller, from Options.Identity
//	Initiator:   the person behind the agent, from Options.Identity
//	Risk, Tags:  from the Rule
//	Metadata:    MetadataTool ("mcp.tool"): the tool name exactly as called
//	Payload:     the call's arguments, as received (absent or null: {})
//	Provenance:  Source "mcp", CreatedBy the client's name, SourceID the session ID
//
// so a policy such as Match: approval.Name("mcp:tool:drop_*") decides who
// approves it. Rules and policies compare tool names in lower case, but an
// approval binds the exact name: a server may have both drop_table and
// DROP_TABLE, and an approval of one never runs the other. As with every
// action, a gated call no policy matches is approved at once (reason
// "no-policy-matched") unless approval.Config.Default is set. The payload
// is hashed in canonical JSON, so arguments that differ only in key order
// or white space are the same call, and any other change of argument is a
// request of its own that never runs on another's approval. Arguments that
// are not a JSON object, or that hold a key twice in one object, are
// refused before anyone is asked: parsers disagree on which of the two
// values counts, so a reviewer could approve one reading and the tool run
// the other.
//
// So are arguments a tool would receive changed. The SDK hands a tool
// added with mcp.AddTool its arguments decoded into a map and encoded
// again, so a number a 64-bit float does not hold exactly
// (9007199254740993 becomes 9007199254740992, 1e400 is refused), invalid
// UTF-8 and half a UTF-16 surrogate pair (\ud800 becomes U+FFFD) would
// reach it as values nobody approved. The model is told why, and to send
// such a number as a string; 42, 1.5, 1e3 and 0.1 pass. The middleware
// cannot tell a typed tool from one that reads the raw arguments, so this
// holds for every gated tool, and for a reviewer's edited arguments too.
//
// Nothing the client sends skips the gate: tool annotations (readOnlyHint
// and the like) and the call's _meta are never read to decide, and a
// client cannot claim an approval by echoing this package's result
// metadata. The default identity is only what the client calls itself
// (see Options.Identity); on a server more than one party reaches, derive
// it from the authenticated caller instead.
//
// # What the model sees
//
// Every outcome is a tool result the model can act on:
//
//   - Approved: the tool runs, with the reviewer's arguments if one edited
//     them (approval.OutcomeModified). The tool's result gains _meta
//     MetaKey, an Outcome with status "approved" or "modified", the
//     request ID and the approvers' conditions; when the arguments were
//     edited or conditions set, a last text content says so. The tool
//     handler reads the approval from its context (ResultFromContext), to
//     honour the conditions.
//   - Pending (ReturnPending, or Block when Wait ran out): a result that is
//     not an error, telling the model that the call awaits a person, the
//     request ID and review URL, and to call the same tool with the same
//     arguments later (which finds the same request, and runs once it is
//     approved). StructuredContent and _meta MetaKey hold the Outcome
//     {"status":"pending","request_id":...}.
//   - Denied, timed out or cancelled: an error result (IsError) with the
//     reviewer's reason and the structured denial (code, retry never,
//     changed or later, hint), so the model learns whether asking again
//     can help. A retry of the identical call after a person's denial or a
//     timeout, within the gate's DenialHold, gets the same answer without
//     asking anyone again.
//   - The gate could not decide (a store failure, an identity hook's
//     error, a panic in a rule's function, arguments refused as above, a
//     reviewer's edited arguments refused alike): an error result with
//     status "error", and the tool does not run. The model is told why
//     only when its call, or the reviewer's edit of it, is at fault
//     (approval.ErrInvalidAction); an edited call's approval is used up.
//     The error is logged, and kept on the result for sending middleware
//     (mcp.CallToolResult.GetError). If the client's context ends first,
//     the call returns its error as a protocol error.
//
// # Confirming at the client
//
// In a single-user setup the person at the client (an IDE, a desktop
// assistant) is often the one who should approve. A rule with
// ConfirmAtClient asks them through the client, with MCP elicitation,
// instead of leaving the call for reviewers: once a call's request is
// pending, the client shows a form with the tool's name, the arguments
// exactly as the vote binds them (compact JSON, with control and format
// characters such as bidirectional overrides escaped), who requests it,
// the request ID and the action hash, and a choice of approve or deny
// with an optional reason. With protocol 2026-07-28 and later the
// question goes in the call's result (an input-required result under
// ConfirmKey; the client retries the call with the answer, and the SDK's
// client does so by itself unless its multi-round-trip support is
// disabled); with earlier protocols the middleware sends the client an
// elicitation request (ServerSession.Elicit) within the call.
//
// The answer is the vote of the person Options.ClientApprover names, cast
// with Gate.Decide on the action hash shown, so every check applies: they
// must be an approver the policies name, a vote on a request a reviewer
// has edited since is refused (approval.ErrActionChanged), and requester
// segregation holds. The agent's user is usually both the action's
// Initiator (Options.Identity) and the person at the client, so the
// policy needs AllowSelfApproval for the vote to count; without it the
// gate refuses the vote (ErrSelfApproval, audited as decision.rejected)
// and the request stays pending for others. A refused vote is logged,
// not shown to the model. The vote's Reason, kept on the request and in
// the decision's audit event, begins with ClientVoteReason, the client's
// name and the session ID. The signed artifact carries the vote (the
// approver and the token) but not its reason. Approve: the vote may
// complete the quorum, and the tool runs. Deny: the request is denied.
// Decline, cancel, a form without a choice, a client that did not
// declare form elicitation, a ClientApprover that names nobody or fails,
// arguments longer than 8 KiB to show, or a person who already voted on
// the request: nobody is asked or nothing is counted, and the call
// answers as its Mode says (pending, or Block's wait for the reviewers).
//
// What this proves, and what it does not: the answer proves that
// whoever held this MCP session was shown these exact arguments and this
// hash, and answered; the session is the identity. It is not a second
// person's review, the way a reviewer's approval is: whoever controls
// the client or the session (the person, or anything that drives the
// client or holds its credentials) can answer, so it is no stronger than
// the way the session is authenticated, and ClientApprover must derive
// the person from that authentication, never from what the client says.
// The RequestState of a question is not signed: it names the request and
// hash the answer is for, and a client that changed it could only have
// its answer refused or counted on this call's own request. Use policies that need
// a reviewer besides the person at the client where one person's word is
// not enough.
//
// # Limits
//
// A tool that declares an output schema gets the pending result above in
// place of its output; clients that check structured content against the
// schema on results that are not errors may refuse it. The gate runs
// before the SDK validates the arguments against the tool's input schema,
// so an approved call with arguments the tool refuses consumes its
// approval, and the defaults its input schema declares are added after: an
// approval covers the arguments sent, and the tool gets the schema's
// defaults for those left out. A gated tool that asks the client for input
// mid-call (an input-required result, protocol 2026-07-28 and later) is
// gated again when the client retries the call with its answers; with
// earlier protocol versions the SDK fulfils the input inside the gated
// call. The question of ConfirmAtClient is a result of a type of this
// package's (it marks itself input-required, which the SDK does only for
// a tool handler's result): receiving middleware added after this one
// sees it as an mcp.Result that is not an *mcp.CallToolResult.
package approvalmcp

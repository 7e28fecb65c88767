package dialog

import (
	"slices"
	"strings"
	"testing"
	"time"

	"sharelock/internal/core"
)

func TestRequestAndIdleText(t *testing.T) {
	bob := &core.Holder{User: "bob", Host: "PC-3", App: "sharelock"}
	m := Request(core.Notice{Kind: core.NoticeRequest, From: bob, Message: "need to print payroll"}, `data\wems.db`, "wems.exe")
	want := "bob on PC-3 (sharelock) is waiting for data\\wems.db: \"need to print payroll\"\n\nSave your work and close wems.exe when you can."
	if m.Body != want || !m.Warning || m.Title != TitleRequest {
		t.Fatalf("request: %+v", m)
	}
	m = Request(core.Notice{Kind: core.NoticeRequest, From: bob}, "db", "wems")
	if strings.Contains(m.Body, `""`) || !strings.HasPrefix(m.Body, "bob on PC-3 (sharelock) is waiting for db\n") {
		t.Fatalf("request without message: %q", m.Body)
	}
	now := time.Date(2026, 11, 27, 9, 42, 0, 0, time.Local)
	m = Idle(core.Notice{Kind: core.NoticeIdle, From: bob, Waiting: 3, Deadline: now.Add(2 * time.Minute)}, "db", "wems", 30*time.Minute, now)
	for _, s := range []string{"wems has been idle for 30 min", "bob on PC-3 (sharelock) and 2 more are waiting for db", "at 09:44:00 (in 2 min)", "unless it becomes active again"} {
		if !strings.Contains(m.Body, s) {
			t.Fatalf("idle text lacks %q: %q", s, m.Body)
		}
	}
	if !slices.Contains(zenityArgs(m), "--warning") || !slices.Contains(kdialogArgs(m), "--sorry") || !strings.Contains(strings.Join(osascriptArgs(m), " "), "icon caution") {
		t.Fatalf("warning icons: %v %v %v", zenityArgs(m), kdialogArgs(m), osascriptArgs(m))
	}
}

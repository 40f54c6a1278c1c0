package httpsession

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// DeviceLabel is the default Options.LabelFunc: a short name for the
// client's device taken from its User-Agent, such as "Firefox on Linux" or
// "Safari on iOS", or the User-Agent's first 64 printable ASCII characters
// if it names no browser and system this function knows, or "unknown
// device". The User-Agent is the client's to choose, so the label is only
// a hint to the user; it is never used to decide anything.
func DeviceLabel(r *http.Request) string {
	ua := r.UserAgent()
	browser := firstMatch(ua, browsers)
	system := firstMatch(ua, systems)
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "a browser on " + system
	}
	label := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, ua)
	if label = strings.TrimSpace(label); label == "" {
		return "unknown device"
	}
	return truncateUTF8(label, 64)
}

// match is a User-Agent fragment and the name it stands for. Order matters:
// Edge and Opera also claim to be Chrome, Chrome to be Safari, Android to
// be Linux.
type match struct{ token, name string }

var browsers = []match{
	{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"},
}

var systems = []match{
	{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"},
	{"CrOS", "ChromeOS"}, {"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
}

func firstMatch(ua string, list []match) string {
	for _, m := range list {
		if strings.Contains(ua, m.token) {
			return m.name
		}
	}
	return ""
}

// truncateUTF8 cuts s to at most n bytes without splitting a character,
// and replaces invalid UTF-8.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

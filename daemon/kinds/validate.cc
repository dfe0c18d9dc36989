// ValidatePayload: the rules of DESIGN.md §6 per kind, in the terms of the
// template JSON. Codes are normalized in place (h2 -> H2, legacy D -> X,
// "TLP:amber" -> AMBER, nationality upper case, categories lower case).
#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"
#include "daemon/kinds/kinds.h"

namespace kontor::kinds {
namespace {

namespace v1 = ::kontor::v1;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

constexpr size_t kMaxProblems = 8;
// Tolerated clock difference for "not in the future".
constexpr absl::Duration kSkew = absl::Minutes(5);
constexpr char kTimeHint[] =
    "expected an RFC 3339 time such as 2026-11-22T09:30:00Z";
constexpr char kIdHint[] =
    "expected a message id (a UUID such as "
    "9b21db3e-5795-43e7-bad2-ae731ea4769e)";

using Codes = std::initializer_list<absl::string_view>;

enum class Fold { kUpper, kLower };

std::string OneOf(Codes codes) {
  return absl::StrCat("one of ", absl::StrJoin(codes, ", "));
}

// `, not "x"`, for echoing a rejected value back.
std::string Not(absl::string_view value) {
  return absl::StrCat(", not \"", Printable(value, 40), "\"");
}

// Calls fn(person, path) for every Person in `m` (any depth), path as in the
// template JSON ("intel_report.persons[1]").
template <typename Fn>
void ForEachPerson(const Message& m, const std::string& path, const Fn& fn) {
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const std::string sub = path.empty() ? f->name() : path + "." + f->name();
    auto visit = [&](const Message& child, const std::string& at) {
      if (child.GetDescriptor() == v1::Person::descriptor()) {
        fn(static_cast<const v1::Person&>(child), at);
      } else {
        ForEachPerson(child, at, fn);
      }
    };
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        visit(r->GetRepeatedMessage(m, f, i), absl::StrCat(sub, "[", i, "]"));
      }
    } else {
      visit(r->GetMessage(m, f), sub);
    }
  }
}

bool PersonIdentified(const v1::Person& p) {
  return !p.family_name().empty() || !p.given_names().empty() ||
         !p.date_of_birth().empty() || p.identifiers_size() > 0;
}

std::optional<absl::CivilDay> ParseDate(absl::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) {
      return std::nullopt;
    }
  }
  auto num = [&](size_t at, size_t n) {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  const int y = num(0, 4), m = num(5, 2), d = num(8, 2);
  const absl::CivilDay day(y, m, d);
  if (day.year() != y || day.month() != m || day.day() != d) {
    return std::nullopt;  // normalized: 2026-02-30 is not a date
  }
  return day;
}

std::optional<absl::Time> ParseRfc3339(const std::string& s) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &err) ||
      t == absl::InfiniteFuture() || t == absl::InfinitePast()) {
    return std::nullopt;
  }
  return t;
}

class Validator {
 public:
  explicit Validator(const Context& ctx)
      : ctx_(ctx),
        now_(absl::FromUnixMillis(ctx.now_ms)),
        today_(absl::ToCivilDay(now_, absl::UTCTimeZone())) {}

  absl::Status Run(v1::Payload* p);

 private:
  void Problem(absl::string_view field, absl::string_view expected) {
    if (problems_.size() < kMaxProblems) {
      problems_.push_back(absl::StrCat(field, ": ", expected));
    }
  }

  bool Required(const std::string& value, absl::string_view field,
                absl::string_view what) {
    if (!absl::StripAsciiWhitespace(value).empty()) return true;
    Problem(field, absl::StrCat("required (", what, ")"));
    return false;
  }

  // Trims and case-folds *value, then checks it against `codes`.
  bool Code(std::string* value, absl::string_view field, Codes codes, Fold fold,
            bool required) {
    *value = std::string(absl::StripAsciiWhitespace(*value));
    if (fold == Fold::kUpper) {
      absl::AsciiStrToUpper(value);
    } else {
      absl::AsciiStrToLower(value);
    }
    if (value->empty()) {
      if (required) {
        Problem(field, absl::StrCat("required (", OneOf(codes), ")"));
      }
      return false;
    }
    if (std::find(codes.begin(), codes.end(), *value) != codes.end()) {
      return true;
    }
    Problem(field, OneOf(codes) + Not(*value));
    return false;
  }

  std::optional<absl::Time> Time(const std::string& value,
                                 absl::string_view field) {
    if (value.empty()) {
      Problem(field, absl::StrCat("required, ", kTimeHint));
      return std::nullopt;
    }
    auto t = ParseRfc3339(value);
    if (!t) Problem(field, kTimeHint + Not(value));
    return t;
  }

  void PastTime(const std::string& value, absl::string_view field) {
    auto t = Time(value, field);
    if (t && *t > now_ + kSkew) Problem(field, "must not be in the future");
  }

  std::optional<absl::CivilDay> Date(const std::string& value,
                                     absl::string_view field) {
    auto d = ParseDate(value);
    if (!d) Problem(field, "expected a date YYYY-MM-DD" + Not(value));
    return d;
  }

  // Lower-cases *id and checks the UUID text form.
  bool MessageId(std::string* id, absl::string_view field) {
    absl::AsciiStrToLower(id);
    if (IsValidMessageId(*id)) return true;
    Problem(field, kIdHint + (id->empty() ? "" : Not(*id)));
    return false;
  }

  // `id` (in `field`) must name a message of one of `kinds` on this node
  // ("answers a referral"). Returns it when found and of the right kind.
  // A reply belongs to the case of what it answers: an empty case_ref takes
  // it; another one is an error (the thread would split).
  void SameCase(v1::Payload* p, const std::optional<KnownMessage>& ref,
                absl::string_view what) {
    if (!ref || ref->case_ref.empty()) return;
    if (p->case_ref().empty()) {
      p->set_case_ref(ref->case_ref);
    } else if (p->case_ref() != ref->case_ref) {
      Problem("case_ref",
              absl::StrCat("the ", what, " it answers is case \"",
                           Printable(ref->case_ref, 80),
                           "\": leave case_ref out, or use that one"));
    }
  }

  std::optional<KnownMessage> Refers(std::string* id, absl::string_view field,
                                     Codes kinds, absl::string_view verb) {
    if (id->empty()) {
      Problem(field,
              absl::StrCat("required (the id of the ", *kinds.begin(), ")"));
      return std::nullopt;
    }
    if (!MessageId(id, field)) return std::nullopt;
    auto found = ctx_.lookup ? ctx_.lookup(*id) : std::nullopt;
    if (!found) {
      Problem(field, "no message with this id on this node");
      return std::nullopt;
    }
    if (std::find(kinds.begin(), kinds.end(), found->kind) == kinds.end()) {
      Problem(field, absl::StrCat(verb, ", but ", *id, " is a ",
                                  Printable(found->kind, 40)));
      return std::nullopt;
    }
    return found;
  }

  void Markings(v1::Markings* m, const std::string& at, bool evaluation);
  void Person(v1::Person* person, const std::string& at);
  void Consent(v1::Consent* c, const std::string& at, bool must_be_given);
  void RefersTo(google::protobuf::RepeatedPtrField<std::string>* ids,
                const std::string& at);

  void ReferralConsult(v1::Payload* p);
  void Referral(v1::Payload* p);
  void ReferralResponse(v1::Payload* p);
  void CaseUpdate(v1::Payload* p);
  void ConsentUpdate(v1::Payload* p);
  void IntelReport(v1::Payload* p);
  void IntelRequest(v1::Payload* p);
  void IntelResponse(v1::Payload* p);
  void IncidentReport(v1::Payload* p);
  void Sitrep(v1::Payload* p);
  void Alert(v1::Payload* p);
  void RestrictionUpdate(v1::Payload* p);
  void EraseNotice(v1::Payload* p);

  const Context& ctx_;
  const absl::Time now_;
  const absl::CivilDay today_;
  std::vector<std::string> problems_;
};

void Validator::Markings(v1::Markings* m, const std::string& at,
                         bool evaluation) {
  if (Code(m->mutable_handling(), at + ".handling", {"H0", "H1", "H2", "H3"},
           Fold::kUpper, true) &&
      m->handling() == "H3") {
    Required(m->handling_text(), at + ".handling_text",
             "the handling conditions of H3");
  }
  Required(m->purpose(), at + ".purpose",
           "the purpose and legal basis of the transfer");
  std::string* rel = m->mutable_source_reliability();
  if (absl::AsciiStrToUpper(absl::StripAsciiWhitespace(*rel)) == "D") {
    *rel = "X";  // legacy 4x4 grading
  }
  Code(rel, at + ".source_reliability", {"A", "B", "C", "X"}, Fold::kUpper,
       evaluation);
  Code(m->mutable_information_accuracy(), at + ".information_accuracy",
       {"1", "2", "3", "4"}, Fold::kUpper, evaluation);
  std::string* tlp = m->mutable_tlp();
  *tlp = std::string(absl::StripAsciiWhitespace(*tlp));
  if (absl::StartsWithIgnoreCase(*tlp, "TLP:")) tlp->erase(0, 4);
  Code(tlp, at + ".tlp", {"RED", "AMBER", "AMBER+STRICT", "GREEN", "CLEAR"},
       Fold::kUpper, false);
  if (!m->review_by().empty()) {
    auto d = Date(m->review_by(), at + ".review_by");
    if (d && *d < today_) Problem(at + ".review_by", "must not be in the past");
  }
}

void Validator::Person(v1::Person* person, const std::string& at) {
  Code(person->mutable_category(), at + ".category",
       {"suspect", "convicted", "victim", "other"}, Fold::kLower, true);
  if (!person->date_of_birth().empty()) {
    auto d = Date(person->date_of_birth(), at + ".date_of_birth");
    if (d && *d > today_) {
      Problem(at + ".date_of_birth", "must not be in the future");
    }
  }
  std::string* nat = person->mutable_nationality();
  if (!nat->empty()) {
    *nat = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(*nat));
    if (nat->size() != 2 || !absl::ascii_isalpha((*nat)[0]) ||
        !absl::ascii_isalpha((*nat)[1])) {
      Problem(at + ".nationality",
              "two letters (ISO 3166 alpha-2 such as EE)" + Not(*nat));
    }
  }
  if (!PersonIdentified(*person) && person->description().empty()) {
    Problem(at,
            "identify the person (family_name, given_names, date_of_birth "
            "or identifiers) or give a description");
  }
}

void Validator::Consent(v1::Consent* c, const std::string& at,
                        bool must_be_given) {
  if (Code(c->mutable_status(), at + ".status", {"given", "withdrawn"},
           Fold::kLower, true) &&
      must_be_given && c->status() == "withdrawn") {
    Problem(at + ".status",
            "\"given\" (the consent was withdrawn: identified data may not be "
            "sent; send an anonymous referral.consult)");
  }
  PastTime(c->recorded_at(), at + ".recorded_at");
}

void Validator::RefersTo(google::protobuf::RepeatedPtrField<std::string>* ids,
                         const std::string& at) {
  if (ids->empty()) Problem(at, "at least one message id");
  if (ids->size() > static_cast<int>(kMaxEraseTargets)) {
    Problem(at, absl::StrCat("at most ", kMaxEraseTargets,
                             " message ids; send several notices"));
  }
  for (int i = 0; i < ids->size(); ++i) {
    MessageId(ids->Mutable(i), absl::StrCat(at, "[", i, "]"));
  }
}

void Validator::ReferralConsult(v1::Payload* p) {
  Required(p->referral_consult().facts(), "referral_consult.facts",
           "the facts of the case, without identifiers");
  if (p->attachments_size() > 0) {
    Problem("attachments", "an anonymous consultation carries no files");
  }
}

void Validator::Referral(v1::Payload* p) {
  v1::Referral* r = p->mutable_referral();
  Required(p->case_ref(), "case_ref",
           "the case reference, e.g. EE-TRM-2026-0042");
  if (!r->has_person()) {
    Problem("referral.person", "required (the presumed victim)");
  } else {
    // Person() checks the category is known; here it must be "victim".
    const std::string category = absl::AsciiStrToLower(
        absl::StripAsciiWhitespace(r->person().category()));
    if (category == "suspect" || category == "convicted" ||
        category == "other") {
      Problem(
          "referral.person.category",
          "\"victim\" (a referral is about a presumed victim)" + Not(category));
    }
  }
  Code(r->mutable_exploitation_type(), "referral.exploitation_type",
       {"sexual", "labour", "criminal_activities", "begging", "forced_marriage",
        "organ_removal", "other"},
       Fold::kLower, true);
  Required(r->requested_service(), "referral.requested_service",
           "the service asked of the recipient");
  const bool identified = r->has_person() && PersonIdentified(r->person());
  if (identified && !r->has_consent()) {
    Problem("referral.consent",
            "required for an identified person (record the person's consent: "
            "status \"given\", recorded_at, scope), or send an anonymous "
            "referral.consult");
  } else if (r->has_consent()) {
    Consent(r->mutable_consent(), "referral.consent", identified);
    if (identified) {
      Required(r->consent().scope(), "referral.consent.scope",
               "what the person agreed to share, and with whom");
    }
  }
}

void Validator::ReferralResponse(v1::Payload* p) {
  v1::ReferralResponse* r = p->mutable_referral_response();
  auto ref = Refers(p->mutable_in_reply_to(), "in_reply_to",
                    {"referral", "referral.consult"}, "answers a referral");
  SameCase(p, ref, "referral");
  if (!Code(r->mutable_decision(), "referral_response.decision",
            {"accept", "decline", "info_pending"}, Fold::kLower, true)) {
    return;
  }
  if (r->decision() == "accept") {
    const v1::Contact& k = r->key_contact();
    Required(k.name(), "referral_response.key_contact.name",
             "the contact person when accepting");
    if (k.phone().empty() && k.email().empty()) {
      Problem("referral_response.key_contact",
              "a phone or an email is required when accepting");
    }
  } else {
    Required(r->reason(), "referral_response.reason",
             absl::StrCat("why, with decision \"", r->decision(), "\""));
  }
}

void Validator::CaseUpdate(v1::Payload* p) {
  Required(p->case_ref(), "case_ref", "the case reference");
  Code(p->mutable_case_update()->mutable_case_state(), "case_update.case_state",
       {"assessment", "return_plan", "arrival", "closure", "other"},
       Fold::kLower, true);
  Required(p->case_update().text(), "case_update.text", "what happened");
}

void Validator::ConsentUpdate(v1::Payload* p) {
  v1::ConsentUpdate* c = p->mutable_consent_update();
  Consent(c->mutable_consent(), "consent_update.consent", false);
  auto ref = Refers(c->mutable_referral_id(), "consent_update.referral_id",
                    {"referral"}, "names a referral");
  SameCase(p, ref, "referral");
}

void Validator::IntelReport(v1::Payload* p) {
  Required(p->intel_report().subject(), "intel_report.subject",
           "what the report is about");
  Required(p->intel_report().body(), "intel_report.body", "the report");
}

void Validator::IntelRequest(v1::Payload* p) {
  v1::IntelRequest* r = p->mutable_intel_request();
  Required(r->question(), "intel_request.question", "what is asked");
  if (Code(r->mutable_urgency(), "intel_request.urgency",
           {"routine", "urgent", "immediate"}, Fold::kLower, true) &&
      r->urgency() != "routine") {
    Required(r->urgency_ground(), "intel_request.urgency_ground",
             "why the request is " + r->urgency());
  }
  auto due = Time(r->due_by(), "intel_request.due_by");
  if (due && *due <= now_) Problem("intel_request.due_by", "in the future");
}

void Validator::IntelResponse(v1::Payload* p) {
  v1::IntelResponse* r = p->mutable_intel_response();
  auto ref = Refers(p->mutable_in_reply_to(), "in_reply_to", {"intel.request"},
                    "answers an intel.request");
  SameCase(p, ref, "intel.request");
  const bool answer = !r->answer().empty();
  if (answer && !r->refusal_code().empty()) {
    Problem("intel_response.refusal_code",
            "give either an answer or a refusal_code, not both");
  } else if (!answer) {
    Code(r->mutable_refusal_code(), "intel_response.refusal_code",
         {"not_available", "legal_restriction", "purpose_not_met",
          "needs_judicial_authorisation", "other"},
         Fold::kLower, false);
    if (r->refusal_code().empty()) {
      Problem("intel_response.answer",
              "required, or a refusal_code (not_available, legal_restriction, "
              "purpose_not_met, needs_judicial_authorisation, other)");
    }
  }
}

void Validator::IncidentReport(v1::Payload* p) {
  v1::IncidentReport* r = p->mutable_incident_report();
  Required(r->location(), "incident_report.location", "where it happened");
  PastTime(r->occurred_at(), "incident_report.occurred_at");
  Code(r->mutable_confidence(), "incident_report.confidence",
       {"low", "medium", "high"}, Fold::kLower, true);
  Required(r->description(), "incident_report.description", "what happened");
}

void Validator::Sitrep(v1::Payload* p) {
  const v1::Sitrep& s = p->sitrep();
  auto from = Time(s.period_start(), "sitrep.period_start");
  auto to = Time(s.period_end(), "sitrep.period_end");
  if (from && to && *to <= *from) {
    Problem("sitrep.period_end", "after period_start");
  }
  Required(s.summary(), "sitrep.summary", "the situation in the period");
}

void Validator::Alert(v1::Payload* p) {
  const v1::Alert& a = p->alert();
  if (ctx_.priority != v1::FLASH) {
    Problem("priority", "an alert is sent with priority flash");
  }
  Required(a.location(), "alert.location", "where");
  Required(a.text(), "alert.text", "the alert");
  auto from = Time(a.valid_from(), "alert.valid_from");
  auto until = Time(a.valid_until(), "alert.valid_until");
  if (from && until && *until <= *from) {
    Problem("alert.valid_until", "after valid_from");
  }
}

void Validator::RestrictionUpdate(v1::Payload* p) {
  v1::RestrictionUpdate* r = p->mutable_restriction_update();
  RefersTo(r->mutable_refers_to(), "restriction_update.refers_to");
  if (!r->has_new_markings()) {
    Problem("restriction_update.new_markings",
            "required (the new handling, purpose, ... of those messages)");
  } else {
    Markings(r->mutable_new_markings(), "restriction_update.new_markings",
             false);
  }
}

void Validator::EraseNotice(v1::Payload* p) {
  v1::EraseNotice* e = p->mutable_erase_notice();
  RefersTo(e->mutable_refers_to(), "erase_notice.refers_to");
  Code(e->mutable_action(), "erase_notice.action", {"erase", "rectify"},
       Fold::kLower, true);
  Required(e->reason(), "erase_notice.reason", "why");
}

absl::Status Validator::Run(v1::Payload* p) {
  if (!IsMessageKind(p->kind())) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind: one of ", absl::StrJoin(MessageKinds(), ", "),
                     p->kind().empty() ? "" : Not(p->kind())));
  }
  const std::string& kind = p->kind();
  const Reflection* r = p->GetReflection();
  const FieldDescriptor* section = r->GetOneofFieldDescriptor(
      *p, v1::Payload::descriptor()->FindOneofByName("content"));
  const std::string want = ContentField(kind);
  if (kind == "note") {
    if (section != nullptr) {
      Problem(section->name(),
              absl::StrCat("a \"note\" carries no \"", section->name(),
                           "\" section (remove it, or set the kind it "
                           "belongs to)"));
    }
  } else if (section == nullptr) {
    Problem(want, absl::StrCat("missing (a \"", kind, "\" message needs its \"",
                               want, "\" section)"));
  } else if (section->name() != want) {
    Problem(want, absl::StrCat("missing (a \"", kind, "\" message needs its \"",
                               want, "\" section, but the payload has a \"",
                               section->name(), "\" section)"));
  }
  if (!p->in_reply_to().empty() && kind != "referral.response" &&
      kind != "intel.response") {
    MessageId(p->mutable_in_reply_to(), "in_reply_to");
  }
  if (kind != "note" || p->has_markings()) {
    const bool evaluation =
        kind == "intel.report" || kind == "incident.report" ||
        (kind == "intel.response" && !p->intel_response().answer().empty());
    Markings(p->mutable_markings(), "markings", evaluation);
  }
  if (section != nullptr && section->name() == want) {
    using Check = void (Validator::*)(v1::Payload*);
    static const std::pair<absl::string_view, Check> kChecks[] = {
        {"referral.consult", &Validator::ReferralConsult},
        {"referral", &Validator::Referral},
        {"referral.response", &Validator::ReferralResponse},
        {"case.update", &Validator::CaseUpdate},
        {"consent.update", &Validator::ConsentUpdate},
        {"intel.report", &Validator::IntelReport},
        {"intel.request", &Validator::IntelRequest},
        {"intel.response", &Validator::IntelResponse},
        {"incident.report", &Validator::IncidentReport},
        {"sitrep", &Validator::Sitrep},
        {"alert", &Validator::Alert},
        {"restriction.update", &Validator::RestrictionUpdate},
        {"erase.notice", &Validator::EraseNotice},
    };
    for (const auto& [name, check] : kChecks) {
      if (name == kind) (this->*check)(p);
    }
  }
  // Persons are reached through the mutable `p`; the walk itself is const.
  ForEachPerson(*p, "", [&](const v1::Person& person, const std::string& at) {
    Person(const_cast<v1::Person*>(&person), at);
  });
  if (problems_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems_, "; "));
}

}  // namespace

std::string ContentField(absl::string_view kind) {
  if (kind == "note" || !IsMessageKind(kind)) return "";
  return absl::StrReplaceAll(kind, {{".", "_"}});
}

absl::Status ValidatePayload(const Context& ctx, v1::Payload* p) {
  return Validator(ctx).Run(p);
}

std::vector<std::string> EraseTargets(const v1::Payload& p,
                                      std::string* reason) {
  std::vector<std::string> out;
  std::string why;
  if (p.kind() == "erase.notice" && p.has_erase_notice() &&
      absl::AsciiStrToLower(p.erase_notice().action()) == "erase") {
    for (const std::string& id : p.erase_notice().refers_to()) {
      // Message ids only (anything else would be signed into receipts),
      // each once, at most kMaxEraseTargets.
      if (out.size() < kMaxEraseTargets && IsValidMessageId(id) &&
          std::find(out.begin(), out.end(), id) == out.end()) {
        out.push_back(id);
      }
    }
    why = "erase notice";
  } else if (p.kind() == "consent.update" && p.has_consent_update() &&
             absl::AsciiStrToLower(p.consent_update().consent().status()) ==
                 "withdrawn" &&
             IsValidMessageId(p.consent_update().referral_id())) {
    out.push_back(p.consent_update().referral_id());
    why = "consent withdrawn";
  }
  if (reason != nullptr) *reason = why;
  return out;
}

bool Identified(const v1::Payload& p) {
  bool found = false;
  ForEachPerson(p, "", [&](const v1::Person& person, const std::string&) {
    found = found || PersonIdentified(person);
  });
  return found;
}

}  // namespace kontor::kinds

#include "daemon/kinds/kinds.h"

#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "daemon/common/kinds.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kontor::kinds {
namespace {

namespace v1 = ::kontor::v1;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kId[] = "9b21db3e-5795-43e7-bad2-ae731ea4769e";
constexpr char kCase[] = "LV-TRM-2026-0007";

int64_t NowMs() {  // 2026-11-22T10:00:00Z
  return absl::ToUnixMillis(absl::FromCivil(
      absl::CivilSecond(2026, 11, 22, 10, 0, 0), absl::UTCTimeZone()));
}

std::string At(absl::Duration from_now) {
  return absl::FormatTime(absl::RFC3339_sec,
                          absl::FromUnixMillis(NowMs()) + from_now,
                          absl::UTCTimeZone());
}

// The kind of message a reply of `kind` refers to.
std::string Referenced(absl::string_view kind) {
  if (kind == "intel.response") return "intel.request";
  return "referral";
}

// Answers any id as a message of `kind` in case kCase.
Lookup Knows(std::string kind) {
  return [kind](const std::string&) {
    return std::optional<KnownMessage>(KnownMessage{kind, "lv", kCase});
  };
}

Context Ctx(absl::string_view kind) {
  Context ctx;
  ctx.priority = kind == "alert" ? v1::FLASH : v1::ROUTINE;
  ctx.now_ms = NowMs();
  ctx.lookup = Knows(Referenced(kind));
  return ctx;
}

std::string Template(absl::string_view kind) {
  TemplateOptions opts;
  opts.now_ms = NowMs();
  auto t = TemplateJson(kind, opts);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "";
}

// A valid payload of `kind`, from its template.
v1::Payload Valid(absl::string_view kind) {
  v1::Payload p;
  absl::Status s = ParsePayloadJson(Template(kind), &p);
  EXPECT_TRUE(s.ok()) << kind << ": " << s;
  return p;
}

absl::Status Validate(v1::Payload* p) {
  return ValidatePayload(Ctx(p->kind()), p);
}

// The error message of validating `p` with `ctx` (which must fail).
std::string Error(v1::Payload p, const Context& ctx) {
  absl::Status s = ValidatePayload(ctx, &p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  const std::string m(s.message());
  EXPECT_THAT(m, Not(HasSubstr("kontor.v1")));
  EXPECT_THAT(m, Not(HasSubstr("proto")));
  return m;
}
std::string Error(const v1::Payload& p) { return Error(p, Ctx(p.kind())); }

std::string ParseError(absl::string_view json) {
  v1::Payload p;
  absl::Status s = ParsePayloadJson(json, &p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  const std::string m(s.message());
  EXPECT_THAT(m, Not(HasSubstr("kontor.v1")));
  EXPECT_THAT(m, Not(HasSubstr("proto")));
  return m;
}

// ------------------------------------------------------------- templates

TEST(TemplateTest, EveryKindParsesAndValidates) {
  for (const std::string& kind : MessageKinds()) {
    SCOPED_TRACE(kind);
    const std::string t = Template(kind);
    EXPECT_THAT(t, HasSubstr("//"));
    EXPECT_THAT(t, HasSubstr("\"kind\": \"" + kind + "\""));
    v1::Payload p;
    ASSERT_TRUE(ParsePayloadJson(t, &p).ok()) << t;
    EXPECT_EQ(p.kind(), kind);
    absl::Status s = Validate(&p);
    EXPECT_TRUE(s.ok()) << s << "\n" << t;
  }
}

TEST(TemplateTest, CommentsExplainTheAllowedValues) {
  EXPECT_THAT(Template("referral"), HasSubstr("forced_marriage"));
  EXPECT_THAT(Template("referral"), HasSubstr("H0 no restriction"));
  EXPECT_THAT(Template("intel.request"), HasSubstr("routine | urgent"));
  EXPECT_THAT(Template("intel.response"),
              HasSubstr("needs_judicial_authorisation"));
  EXPECT_THAT(Template("note"), HasSubstr("--body-file"));
  EXPECT_THAT(Template("alert"), HasSubstr("--priority flash"));
}

TEST(TemplateTest, DatesAreRelativeToNow) {
  v1::Payload p = Valid("intel.request");
  EXPECT_EQ(p.intel_request().due_by(), "2026-11-25T10:00:00Z");
  EXPECT_EQ(p.markings().review_by(), "2027-11-22");
  EXPECT_EQ(Valid("referral").referral().consent().recorded_at(),
            "2026-11-22T09:00:00Z");
}

TEST(TemplateTest, UsesCaseRefAndInReplyTo) {
  TemplateOptions opts;
  opts.now_ms = NowMs();
  opts.case_ref = "EE-TRM-2026-0999";
  opts.in_reply_to = "0f8c2a6e-1111-4222-8333-444455556666";
  auto t = TemplateJson("referral.response", opts);
  ASSERT_TRUE(t.ok());
  v1::Payload p;
  ASSERT_TRUE(ParsePayloadJson(*t, &p).ok());
  EXPECT_EQ(p.case_ref(), "EE-TRM-2026-0999");
  EXPECT_EQ(p.in_reply_to(), opts.in_reply_to);
  EXPECT_EQ(Valid("referral").case_ref(), "EE-TRM-2026-0042");
  EXPECT_EQ(Valid("intel.response").in_reply_to(), kId);
}

TEST(TemplateTest, UnknownKindListsTheKinds) {
  auto t = TemplateJson("referal", TemplateOptions());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("referral.consult"));
  EXPECT_THAT(t.status().message(), HasSubstr("erase.notice"));
}

// --------------------------------------------------------- general rules

TEST(ValidateTest, KindMustBeKnown) {
  v1::Payload p = Valid("sitrep");
  p.set_kind("sitrep.daily");
  EXPECT_THAT(Error(p), HasSubstr("kind: one of note, referral.consult"));
  p.clear_kind();
  EXPECT_THAT(Error(p), HasSubstr("kind: one of"));
}

TEST(ValidateTest, NoteNeedsNoMarkingsButNoSection) {
  v1::Payload p;
  p.set_kind("note");
  p.set_subject("Hello");
  p.set_body("text");
  EXPECT_TRUE(Validate(&p).ok());
  p.mutable_sitrep()->set_summary("x");
  EXPECT_THAT(Error(p), HasSubstr("sitrep: a \"note\" carries no"));
}

TEST(ValidateTest, NoteMarkingsAreValidatedWhenPresent) {
  v1::Payload p;
  p.set_kind("note");
  p.mutable_markings()->set_handling("h1");
  p.mutable_markings()->set_purpose("Liaison");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.markings().handling(), "H1");
  p.mutable_markings()->set_handling("H9");
  EXPECT_THAT(Error(p), HasSubstr("markings.handling: one of H0, H1"));
}

TEST(ValidateTest, SectionMustMatchKind) {
  v1::Payload p = Valid("referral");
  p.clear_referral();
  EXPECT_THAT(Error(p), HasSubstr("referral: missing (a \"referral\" message "
                                  "needs its \"referral\" section)"));
  p.mutable_alert()->set_text("x");
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("referral: missing"));
  EXPECT_THAT(e, HasSubstr("has a \"alert\" section"));
}

TEST(ValidateTest, Handling) {
  v1::Payload p = Valid("case.update");
  p.mutable_markings()->set_handling(" h2 ");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.markings().handling(), "H2");
  p.mutable_markings()->clear_handling();
  EXPECT_THAT(Error(p), HasSubstr("markings.handling: required (one of H0"));
  p.mutable_markings()->set_handling("H4");
  EXPECT_THAT(Error(p), HasSubstr("markings.handling: one of H0, H1, H2, H3, "
                                  "not \"H4\""));
  p.clear_markings();
  EXPECT_THAT(Error(p), HasSubstr("markings.handling: required"));
}

TEST(ValidateTest, H3NeedsHandlingText) {
  v1::Payload p = Valid("case.update");
  p.mutable_markings()->set_handling("H3");
  EXPECT_THAT(Error(p), HasSubstr("markings.handling_text: required"));
  p.mutable_markings()->set_handling_text("Police only");
  EXPECT_TRUE(Validate(&p).ok());
}

TEST(ValidateTest, PurposeRequired) {
  v1::Payload p = Valid("sitrep");
  p.mutable_markings()->set_purpose("  ");
  EXPECT_THAT(Error(p), HasSubstr("markings.purpose: required (the purpose"));
}

TEST(ValidateTest, SourceReliability) {
  v1::Payload p = Valid("intel.report");
  p.mutable_markings()->set_source_reliability("d");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.markings().source_reliability(), "X");
  p.mutable_markings()->set_source_reliability("b");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.markings().source_reliability(), "B");
  p.mutable_markings()->set_source_reliability("E");
  EXPECT_THAT(Error(p),
              HasSubstr("markings.source_reliability: one of A, B, C, X"));
}

TEST(ValidateTest, InformationAccuracy) {
  v1::Payload p = Valid("referral");
  p.mutable_markings()->set_information_accuracy("3");
  EXPECT_TRUE(Validate(&p).ok());
  p.mutable_markings()->set_information_accuracy("5");
  EXPECT_THAT(Error(p),
              HasSubstr("markings.information_accuracy: one of 1, 2, 3, 4"));
}

TEST(ValidateTest, EvaluationRequiredOnIntelligence) {
  for (const char* kind :
       {"intel.report", "incident.report", "intel.response"}) {
    SCOPED_TRACE(kind);
    v1::Payload p = Valid(kind);
    p.mutable_markings()->clear_source_reliability();
    p.mutable_markings()->clear_information_accuracy();
    const std::string e = Error(p);
    EXPECT_THAT(e, HasSubstr("markings.source_reliability: required"));
    EXPECT_THAT(e, HasSubstr("markings.information_accuracy: required"));
  }
  // Not on other kinds, nor on a refusal.
  v1::Payload p = Valid("referral");
  p.mutable_markings()->clear_source_reliability();
  EXPECT_TRUE(Validate(&p).ok());
  p = Valid("intel.response");
  p.mutable_markings()->clear_source_reliability();
  p.mutable_markings()->clear_information_accuracy();
  p.mutable_intel_response()->clear_answer();
  p.mutable_intel_response()->set_refusal_code("legal_restriction");
  EXPECT_TRUE(Validate(&p).ok()) << Validate(&p);
}

TEST(ValidateTest, Tlp) {
  v1::Payload p = Valid("sitrep");
  p.mutable_markings()->set_tlp("TLP:amber");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.markings().tlp(), "AMBER");
  p.mutable_markings()->set_tlp("tlp:amber+strict");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.markings().tlp(), "AMBER+STRICT");
  p.mutable_markings()->clear_tlp();
  EXPECT_TRUE(Validate(&p).ok());
  p.mutable_markings()->set_tlp("WHITE");
  EXPECT_THAT(Error(p), HasSubstr("markings.tlp: one of RED, AMBER, "
                                  "AMBER+STRICT, GREEN, CLEAR"));
}

TEST(ValidateTest, ReviewBy) {
  v1::Payload p = Valid("sitrep");
  p.mutable_markings()->set_review_by("2026-11-22");  // today
  EXPECT_TRUE(Validate(&p).ok());
  p.mutable_markings()->set_review_by("2026-11-21");
  EXPECT_THAT(Error(p), HasSubstr("markings.review_by: must not be in the"));
  p.mutable_markings()->set_review_by("2027-02-30");
  EXPECT_THAT(Error(p), HasSubstr("markings.review_by: expected a date "
                                  "YYYY-MM-DD"));
  p.mutable_markings()->set_review_by("22.11.2027");
  EXPECT_THAT(Error(p), HasSubstr("markings.review_by: expected a date"));
}

TEST(ValidateTest, PersonCategory) {
  v1::Payload p = Valid("intel.report");
  p.mutable_intel_report()->mutable_persons(1)->set_category("Other");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.intel_report().persons(1).category(), "other");
  p.mutable_intel_report()->mutable_persons(1)->set_category("witness");
  EXPECT_THAT(Error(p), HasSubstr("intel_report.persons[1].category: one of "
                                  "suspect, convicted, victim, other"));
  p.mutable_intel_report()->mutable_persons(1)->clear_category();
  EXPECT_THAT(Error(p),
              HasSubstr("intel_report.persons[1].category: required"));
}

TEST(ValidateTest, PersonDateOfBirth) {
  v1::Payload p = Valid("intel.request");
  v1::Person* person = p.mutable_intel_request()->add_persons();
  person->set_category("suspect");
  person->set_date_of_birth("1990-02-29");
  EXPECT_THAT(Error(p), HasSubstr("intel_request.persons[0].date_of_birth: "
                                  "expected a date YYYY-MM-DD"));
  person->set_date_of_birth("2026-11-23");
  EXPECT_THAT(Error(p), HasSubstr("intel_request.persons[0].date_of_birth: "
                                  "must not be in the future"));
  person->set_date_of_birth("1992-02-29");
  EXPECT_TRUE(Validate(&p).ok());
}

TEST(ValidateTest, PersonNationality) {
  v1::Payload p = Valid("intel.report");
  p.mutable_intel_report()->mutable_persons(0)->set_nationality("lv");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.intel_report().persons(0).nationality(), "LV");
  p.mutable_intel_report()->mutable_persons(0)->set_nationality("LVA");
  EXPECT_THAT(Error(p), HasSubstr("intel_report.persons[0].nationality: two "
                                  "letters"));
}

TEST(ValidateTest, PersonIdentifiedOrDescribed) {
  v1::Payload p = Valid("alert");
  p.mutable_alert()->mutable_persons(0)->clear_description();
  EXPECT_THAT(Error(p), HasSubstr("alert.persons[0]: identify the person"));
  p.mutable_alert()->mutable_persons(0)->add_identifiers("phone:+3725550000");
  EXPECT_TRUE(Validate(&p).ok());
}

TEST(ValidateTest, Times) {
  v1::Payload p = Valid("sitrep");
  p.mutable_sitrep()->set_period_start("2026-11-21 06:00");
  EXPECT_THAT(Error(p),
              HasSubstr("sitrep.period_start: expected an RFC 3339 time such "
                        "as 2026-11-22T09:30:00Z"));
  p.mutable_sitrep()->set_period_start("infinite-past");
  EXPECT_THAT(Error(p), HasSubstr("sitrep.period_start: expected an RFC 3339"));
  p.mutable_sitrep()->set_period_start("2026-11-21T06:00:00+02:00");
  EXPECT_TRUE(Validate(&p).ok());
}

TEST(ValidateTest, MessageIds) {
  v1::Payload p;
  p.set_kind("note");
  p.set_in_reply_to("not-an-id");
  EXPECT_THAT(Error(p), HasSubstr("in_reply_to: expected a message id"));
  p.set_in_reply_to("9B21DB3E-5795-43E7-BAD2-AE731EA4769E");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.in_reply_to(), kId);
}

TEST(ValidateTest, AtMostEightProblems) {
  v1::Payload p = Valid("incident.report");
  p.clear_markings();
  p.mutable_incident_report()->Clear();
  const std::string e = Error(p);
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(e, "; ")).size(), 8u) << e;
}

// ---------------------------------------------------------------- kinds

TEST(ReferralConsultTest, FactsAndNoFiles) {
  v1::Payload p = Valid("referral.consult");
  p.mutable_referral_consult()->clear_facts();
  EXPECT_THAT(Error(p), HasSubstr("referral_consult.facts: required"));
  p = Valid("referral.consult");
  p.add_attachments()->set_name("passport.jpg");
  EXPECT_THAT(Error(p), HasSubstr("attachments: an anonymous consultation "
                                  "carries no files"));
  EXPECT_FALSE(Identified(Valid("referral.consult")));
}

TEST(ReferralTest, CaseRefRequired) {
  v1::Payload p = Valid("referral");
  p.clear_case_ref();
  EXPECT_THAT(Error(p), HasSubstr("case_ref: required"));
}

TEST(ReferralTest, PersonIsAVictim) {
  v1::Payload p = Valid("referral");
  p.mutable_referral()->clear_person();
  EXPECT_THAT(Error(p), HasSubstr("referral.person: required"));
  p = Valid("referral");
  p.mutable_referral()->mutable_person()->set_category("suspect");
  EXPECT_THAT(Error(p), HasSubstr("referral.person.category: \"victim\""));
  p.mutable_referral()->mutable_person()->set_category("Victim");
  EXPECT_TRUE(Validate(&p).ok());
}

TEST(ReferralTest, ExploitationType) {
  v1::Payload p = Valid("referral");
  p.mutable_referral()->set_exploitation_type("Forced_Marriage");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.referral().exploitation_type(), "forced_marriage");
  p.mutable_referral()->set_exploitation_type("labor");
  EXPECT_THAT(Error(p), HasSubstr("referral.exploitation_type: one of sexual, "
                                  "labour, criminal_activities"));
}

TEST(ReferralTest, RequestedService) {
  v1::Payload p = Valid("referral");
  p.mutable_referral()->clear_requested_service();
  EXPECT_THAT(Error(p), HasSubstr("referral.requested_service: required"));
}

TEST(ReferralTest, IdentifiedPersonNeedsConsent) {
  v1::Payload p = Valid("referral");
  p.mutable_referral()->clear_consent();
  EXPECT_THAT(Error(p),
              HasSubstr("referral.consent: required for an identified person "
                        "(record the person's consent: status \"given\", "
                        "recorded_at, scope), or send an anonymous "
                        "referral.consult"));
  // Described only: no consent needed.
  v1::Person* person = p.mutable_referral()->mutable_person();
  person->clear_family_name();
  person->clear_given_names();
  person->clear_date_of_birth();
  person->clear_identifiers();
  person->set_description("woman in her twenties");
  EXPECT_TRUE(Validate(&p).ok());
}

TEST(ReferralTest, ConsentMustBeGivenRecordedAndScoped) {
  v1::Payload p = Valid("referral");
  p.mutable_referral()->mutable_consent()->set_status("withdrawn");
  EXPECT_THAT(Error(p), HasSubstr("referral.consent.status: \"given\""));
  p = Valid("referral");
  p.mutable_referral()->mutable_consent()->set_status("yes");
  EXPECT_THAT(Error(p), HasSubstr("referral.consent.status: one of given, "
                                  "withdrawn"));
  p = Valid("referral");
  p.mutable_referral()->mutable_consent()->set_recorded_at(At(absl::Hours(1)));
  EXPECT_THAT(Error(p), HasSubstr("referral.consent.recorded_at: must not be "
                                  "in the future"));
  p.mutable_referral()->mutable_consent()->set_recorded_at("yesterday");
  EXPECT_THAT(Error(p),
              HasSubstr("referral.consent.recorded_at: expected an RFC 3339"));
  p = Valid("referral");
  p.mutable_referral()->mutable_consent()->clear_scope();
  EXPECT_THAT(Error(p), HasSubstr("referral.consent.scope: required"));
}

TEST(ReferralResponseTest, MustAnswerAReferral) {
  v1::Payload p = Valid("referral.response");
  Context ctx = Ctx("referral.response");
  EXPECT_TRUE(ValidatePayload(ctx, &p).ok());
  ctx.lookup = Knows("referral.consult");
  EXPECT_TRUE(ValidatePayload(ctx, &p).ok());
  ctx.lookup = Knows("intel.report");
  EXPECT_THAT(Error(p, ctx),
              HasSubstr(absl::StrCat("in_reply_to: answers a referral, but ",
                                     kId, " is a intel.report")));
  ctx.lookup = nullptr;
  EXPECT_THAT(Error(p, ctx),
              HasSubstr("in_reply_to: no message with this id on this node"));
  p.clear_in_reply_to();
  EXPECT_THAT(Error(p), HasSubstr("in_reply_to: required"));
  p.set_in_reply_to("42");
  EXPECT_THAT(Error(p), HasSubstr("in_reply_to: expected a message id"));
}

TEST(ReferralResponseTest, CopiesCaseRef) {
  v1::Payload p = Valid("referral.response");
  p.clear_case_ref();
  ASSERT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.case_ref(), kCase);
}

TEST(ReferralResponseTest, StaysInTheCaseOfTheReferral) {
  // The template of a reply leaves the case out: the referral's is taken.
  EXPECT_THAT(Template("referral.response"), Not(HasSubstr("\"case_ref\"")));
  v1::Payload p = Valid("referral.response");
  p.set_case_ref("EE-TRM-2026-9999");
  EXPECT_THAT(Error(p), HasSubstr("case_ref: the referral it answers is case "
                                  "\"LV-TRM-2026-0007\""));
  p.set_case_ref(kCase);
  EXPECT_TRUE(Validate(&p).ok());
  v1::Payload c = Valid("consent.update");
  c.set_case_ref("other");
  EXPECT_THAT(Error(c), HasSubstr("case_ref"));
  v1::Payload i = Valid("intel.response");
  i.set_case_ref("other");
  EXPECT_THAT(Error(i), HasSubstr("case_ref: the intel.request"));
}

TEST(ReferralResponseTest, Decision) {
  v1::Payload p = Valid("referral.response");
  p.mutable_referral_response()->set_decision("maybe");
  EXPECT_THAT(Error(p), HasSubstr("referral_response.decision: one of accept, "
                                  "decline, info_pending"));
}

TEST(ReferralResponseTest, AcceptNeedsKeyContact) {
  v1::Payload p = Valid("referral.response");
  p.mutable_referral_response()->mutable_key_contact()->clear_phone();
  EXPECT_TRUE(Validate(&p).ok());  // the email is enough
  p.mutable_referral_response()->mutable_key_contact()->clear_email();
  EXPECT_THAT(Error(p), HasSubstr("referral_response.key_contact: a phone or "
                                  "an email"));
  p.mutable_referral_response()->clear_key_contact();
  EXPECT_THAT(Error(p),
              HasSubstr("referral_response.key_contact.name: required"));
}

TEST(ReferralResponseTest, DeclineNeedsReason) {
  for (const char* decision : {"decline", "info_pending"}) {
    v1::Payload p = Valid("referral.response");
    p.mutable_referral_response()->set_decision(decision);
    p.mutable_referral_response()->clear_key_contact();
    EXPECT_THAT(Error(p), HasSubstr("referral_response.reason: required"));
    p.mutable_referral_response()->set_reason("No capacity");
    EXPECT_TRUE(Validate(&p).ok());
  }
}

TEST(CaseUpdateTest, Rules) {
  v1::Payload p = Valid("case.update");
  p.mutable_case_update()->set_case_state("Closure");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.case_update().case_state(), "closure");
  p.mutable_case_update()->set_case_state("closed");
  p.mutable_case_update()->clear_text();
  p.clear_case_ref();
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("case_update.case_state: one of assessment, "
                           "return_plan, arrival, closure, other"));
  EXPECT_THAT(e, HasSubstr("case_update.text: required"));
  EXPECT_THAT(e, HasSubstr("case_ref: required"));
}

TEST(ConsentUpdateTest, Consent) {
  v1::Payload p = Valid("consent.update");
  EXPECT_EQ(p.consent_update().consent().status(), "withdrawn");
  p.mutable_consent_update()->mutable_consent()->set_status("revoked");
  p.mutable_consent_update()->mutable_consent()->set_recorded_at(
      At(absl::Hours(2)));
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("consent_update.consent.status: one of given, "
                           "withdrawn"));
  EXPECT_THAT(e, HasSubstr("consent_update.consent.recorded_at: must not be "
                           "in the future"));
}

TEST(ConsentUpdateTest, NamesAReferral) {
  v1::Payload p = Valid("consent.update");
  p.clear_case_ref();
  ASSERT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.case_ref(), kCase);
  Context ctx = Ctx("consent.update");
  ctx.lookup = Knows("referral.consult");
  EXPECT_THAT(Error(p, ctx),
              HasSubstr("consent_update.referral_id: names a referral, but"));
  p.mutable_consent_update()->clear_referral_id();
  EXPECT_THAT(Error(p), HasSubstr("consent_update.referral_id: required"));
}

TEST(IntelReportTest, SubjectAndBody) {
  v1::Payload p = Valid("intel.report");
  p.mutable_intel_report()->clear_subject();
  p.mutable_intel_report()->clear_body();
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("intel_report.subject: required"));
  EXPECT_THAT(e, HasSubstr("intel_report.body: required"));
}

TEST(IntelRequestTest, QuestionAndUrgency) {
  v1::Payload p = Valid("intel.request");
  p.mutable_intel_request()->clear_question();
  p.mutable_intel_request()->set_urgency("asap");
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("intel_request.question: required"));
  EXPECT_THAT(e, HasSubstr("intel_request.urgency: one of routine, urgent, "
                           "immediate"));
}

TEST(IntelRequestTest, UrgencyGroundUnlessRoutine) {
  v1::Payload p = Valid("intel.request");
  p.mutable_intel_request()->clear_urgency_ground();
  EXPECT_THAT(Error(p), HasSubstr("intel_request.urgency_ground: required"));
  p.mutable_intel_request()->set_urgency("ROUTINE");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.intel_request().urgency(), "routine");
}

TEST(IntelRequestTest, DueByInTheFuture) {
  v1::Payload p = Valid("intel.request");
  p.mutable_intel_request()->set_due_by(At(-absl::Minutes(1)));
  EXPECT_THAT(Error(p), HasSubstr("intel_request.due_by: in the future"));
  p.mutable_intel_request()->clear_due_by();
  EXPECT_THAT(Error(p), HasSubstr("intel_request.due_by: required, expected "
                                  "an RFC 3339 time"));
}

TEST(IntelResponseTest, MustAnswerAnIntelRequest) {
  v1::Payload p = Valid("intel.response");
  Context ctx = Ctx("intel.response");
  ctx.lookup = Knows("referral");
  EXPECT_THAT(Error(p, ctx),
              HasSubstr("in_reply_to: answers an intel.request, but"));
}

TEST(IntelResponseTest, AnswerOrRefusal) {
  v1::Payload p = Valid("intel.response");
  p.mutable_intel_response()->set_refusal_code("other");
  EXPECT_THAT(Error(p), HasSubstr("intel_response.refusal_code: give either "
                                  "an answer or a refusal_code"));
  p.mutable_intel_response()->clear_answer();
  EXPECT_TRUE(Validate(&p).ok());
  p.mutable_intel_response()->set_refusal_code("secret");
  EXPECT_THAT(Error(p), HasSubstr("intel_response.refusal_code: one of "
                                  "not_available, legal_restriction"));
  p.mutable_intel_response()->clear_refusal_code();
  EXPECT_THAT(Error(p), HasSubstr("intel_response.answer: required, or a "
                                  "refusal_code"));
}

TEST(IncidentReportTest, Rules) {
  v1::Payload p = Valid("incident.report");
  p.mutable_incident_report()->set_occurred_at(At(absl::Minutes(3)));
  EXPECT_TRUE(Validate(&p).ok());  // within the clock tolerance
  p.mutable_incident_report()->set_occurred_at(At(absl::Minutes(10)));
  p.mutable_incident_report()->clear_location();
  p.mutable_incident_report()->set_confidence("certain");
  p.mutable_incident_report()->clear_description();
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("incident_report.occurred_at: must not be in the "
                           "future"));
  EXPECT_THAT(e, HasSubstr("incident_report.location: required"));
  EXPECT_THAT(e, HasSubstr("incident_report.confidence: one of low, medium, "
                           "high"));
  EXPECT_THAT(e, HasSubstr("incident_report.description: required"));
}

TEST(SitrepTest, Rules) {
  v1::Payload p = Valid("sitrep");
  p.mutable_sitrep()->set_period_end(p.sitrep().period_start());
  p.mutable_sitrep()->clear_summary();
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("sitrep.period_end: after period_start"));
  EXPECT_THAT(e, HasSubstr("sitrep.summary: required"));
}

TEST(AlertTest, PriorityFlash) {
  v1::Payload p = Valid("alert");
  Context ctx = Ctx("alert");
  ctx.priority = v1::URGENT;
  EXPECT_THAT(Error(p, ctx),
              HasSubstr("priority: an alert is sent with priority flash"));
}

TEST(AlertTest, Rules) {
  v1::Payload p = Valid("alert");
  p.mutable_alert()->set_valid_until(p.alert().valid_from());
  p.mutable_alert()->clear_location();
  p.mutable_alert()->clear_text();
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("alert.valid_until: after valid_from"));
  EXPECT_THAT(e, HasSubstr("alert.location: required"));
  EXPECT_THAT(e, HasSubstr("alert.text: required"));
}

TEST(RestrictionUpdateTest, Rules) {
  v1::Payload p = Valid("restriction.update");
  p.mutable_restriction_update()->mutable_new_markings()->set_handling("h9");
  p.mutable_restriction_update()->add_refers_to("nope");
  std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("restriction_update.new_markings.handling: one of "
                           "H0, H1, H2, H3"));
  EXPECT_THAT(e, HasSubstr("restriction_update.refers_to[1]: expected a "
                           "message id"));
  p.mutable_restriction_update()->clear_refers_to();
  p.mutable_restriction_update()->clear_new_markings();
  e = Error(p);
  EXPECT_THAT(e, HasSubstr("restriction_update.refers_to: at least one"));
  EXPECT_THAT(e, HasSubstr("restriction_update.new_markings: required"));
}

TEST(EraseNoticeTest, Rules) {
  v1::Payload p = Valid("erase.notice");
  p.mutable_erase_notice()->set_action("Rectify");
  EXPECT_TRUE(Validate(&p).ok());
  EXPECT_EQ(p.erase_notice().action(), "rectify");
  p.mutable_erase_notice()->set_action("delete");
  p.mutable_erase_notice()->clear_reason();
  p.mutable_erase_notice()->clear_refers_to();
  const std::string e = Error(p);
  EXPECT_THAT(e, HasSubstr("erase_notice.action: one of erase, rectify"));
  EXPECT_THAT(e, HasSubstr("erase_notice.reason: required"));
  EXPECT_THAT(e, HasSubstr("erase_notice.refers_to: at least one"));
}

// ------------------------------------------------------------------ JSON

TEST(ParseTest, UnknownField) {
  const std::string e =
      ParseError("{\"kind\": \"referral\",\n \"refferal\": {}}");
  EXPECT_THAT(e, HasSubstr("unknown field \"refferal\""));
  EXPECT_THAT(e, HasSubstr("did you mean \"referral\""));
  EXPECT_THAT(e, HasSubstr("line 2"));
  EXPECT_THAT(ParseError("{\"referral\": {\"person\": {\"famly_name\": "
                         "\"x\"}}}"),
              HasSubstr("unknown field \"famly_name\" in \"referral.person\""));
}

TEST(ParseTest, WrongType) {
  EXPECT_THAT(ParseError("{\"referral\": {\"person\": \"Mari Tamm\"}}"),
              HasSubstr("field \"referral.person\": expected an object"));
  EXPECT_THAT(ParseError("{\"referral\": {\"needs\": \"food\"}}"),
              HasSubstr("field \"referral.needs\": expected a list"));
  EXPECT_THAT(ParseError("{\"markings\": {\"information_accuracy\": 2}}"),
              HasSubstr("field \"markings.information_accuracy\": expected a "
                        "string"));
  EXPECT_THAT(ParseError("{\"intel_report\": {\"persons\": [{}, 3]}}"),
              HasSubstr("field \"intel_report.persons[1]\": expected an "
                        "object"));
  EXPECT_THAT(ParseError("{\"body\": \"not base64!\"}"),
              HasSubstr("field \"body\": expected base64"));
}

TEST(ParseTest, BadJson) {
  EXPECT_THAT(ParseError("{\n  \"kind\": \"note\"\n  \"subject\": \"x\"\n}"),
              HasSubstr("not valid JSON near line 2: expected a comma"));
  EXPECT_THAT(ParseError("{\n\"kind\": \"note\",\n}"),
              HasSubstr("not valid JSON near line 3"));
  EXPECT_THAT(ParseError("{\"kind\": 'note'}"),
              HasSubstr("not valid JSON near line 1"));
  EXPECT_THAT(ParseError("{\"subject\": \"a\nb\"}"),
              HasSubstr("not valid JSON near line 1: a line break"));
  EXPECT_THAT(ParseError(""), HasSubstr("not valid JSON near line 1"));
  EXPECT_THAT(ParseError("{\"kind\": \"note\", // the kind\n}"),
              HasSubstr("near line 1: a // comment must be on a line of its "
                        "own"));
  EXPECT_THAT(ParseError("{\n\"subject\": \"caf\xe9\"}"),
              HasSubstr("not valid JSON near line 2: text that is not UTF-8"));
  EXPECT_THAT(ParseError("{} {}"), HasSubstr("not valid JSON"));
  EXPECT_THAT(ParseError("[]"), HasSubstr("expected a JSON object"));
  EXPECT_THAT(ParseError(std::string(1000, '[')), HasSubstr("too deeply"));
}

TEST(ParseTest, AttachmentsAndPaddingRejected) {
  EXPECT_THAT(ParseError("{\"attachments\": [{\"name\": \"a.pdf\"}]}"),
              HasSubstr("--attach FILE"));
  EXPECT_THAT(ParseError("{\"padding\": \"AAAA\"}"), HasSubstr("padding:"));
}

TEST(ParseTest, OneSectionAndNoDuplicates) {
  EXPECT_THAT(ParseError("{\"sitrep\": {}, \"alert\": {}}"),
              HasSubstr("only one content section"));
  EXPECT_THAT(ParseError("{\"case_ref\": \"a\", \"caseRef\": \"b\"}"),
              HasSubstr("field \"case_ref\" is given twice"));
}

TEST(ParseTest, CamelCaseCommentsEscapesAndNull) {
  v1::Payload p;
  ASSERT_TRUE(ParsePayloadJson("  // a comment\n"
                               "{\n"
                               "  // another\n"
                               "  \"kind\": \"referral.consult\",\n"
                               "  \"caseRef\": \"EE-1\",\n"
                               "  \"inReplyTo\": null,\n"
                               "  \"subject\": \"M\\u00e4gi \\ud83d\\ude00\",\n"
                               "  \"referralConsult\": {\"facts\": \"f\"}\n"
                               "}\n",
                               &p)
                  .ok());
  EXPECT_EQ(p.case_ref(), "EE-1");
  EXPECT_EQ(p.subject(), "M\xc3\xa4gi \xf0\x9f\x98\x80");
  EXPECT_EQ(p.referral_consult().facts(), "f");
}

TEST(PayloadJsonTest, DropsAttachmentKeys) {
  v1::Payload p = Valid("intel.report");
  v1::Attachment* a = p.add_attachments();
  a->set_name("photo.jpg");
  a->set_key(std::string(32, 'k'));
  a->set_size(123);
  const std::string json = PayloadJson(p);
  EXPECT_THAT(json, HasSubstr("\"photo.jpg\""));
  EXPECT_THAT(json, HasSubstr("\"case_ref\""));
  EXPECT_THAT(json, HasSubstr("\"source_reliability\": \"B\""));
  EXPECT_THAT(json, Not(HasSubstr("\"key\"")));
  EXPECT_THAT(json, Not(HasSubstr("a2tr")));      // base64 of "kkk"
  EXPECT_EQ(p.attachments(0).key().size(), 32u);  // the original is kept
}

// ---------------------------------------------------------------- render

TEST(RenderTest, Referral) {
  const std::string text = RenderText(Valid("referral"));
  EXPECT_THAT(text, HasSubstr("Handling: H2 (not to be passed on"));
  EXPECT_THAT(text, HasSubstr("TLP: AMBER\n"));
  EXPECT_THAT(text, HasSubstr("Purpose: Assistance"));
  EXPECT_THAT(text, HasSubstr("Review by: 2027-11-22\n"));
  EXPECT_THAT(text, HasSubstr("Exploitation type: labour\n"));
  EXPECT_THAT(text, HasSubstr("Person:\n  Category: victim\n"
                              "  Family name: Tamm\n"));
  EXPECT_THAT(text, HasSubstr("Needs:\n  - safe accommodation\n"
                              "  - medical care\n"));
  EXPECT_THAT(text, HasSubstr("Consent:\n  Status: given\n"));
  EXPECT_EQ(text.back(), '\n');
}

TEST(RenderTest, EvaluationInWordsAndLists) {
  const std::string text = RenderText(Valid("intel.report"));
  EXPECT_THAT(text, HasSubstr("Source: B (usually reliable)  Accuracy: 2 "
                              "(known indirectly, corroborated)  TLP: AMBER"));
  EXPECT_THAT(text, HasSubstr("Persons:\n  - Category: suspect\n"
                              "    Family name: Berg\n"));
  EXPECT_THAT(text, HasSubstr("  - Category: other\n    Description: "));
  EXPECT_THAT(text, HasSubstr("Identifiers:\n      - passport:FX1234567\n"));
}

TEST(RenderTest, EscapesControlCharacters) {
  v1::Payload p = Valid("referral");
  p.mutable_referral()->set_risk_summary(
      "\x1b[31mred\x1b[0m \xe2\x80\xae"
      "evil\r");
  p.mutable_referral()->mutable_person()->set_family_name("M\xc3\xa4gi");
  p.mutable_referral()->set_requested_service("line one\nline two");
  const std::string text = RenderText(p);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_THAT(text, HasSubstr("Risk summary: \\x1b[31mred\\x1b[0m \\u202e"
                              "evil\\x0d\n"));
  EXPECT_THAT(text, HasSubstr("Family name: M\xc3\xa4gi\n"));
  EXPECT_THAT(text, HasSubstr("Requested service:\n  line one\n  line two\n"));
  EXPECT_EQ(EscapeText("a\xff\xc2\x9b"
                       "b"),
            "a\\xff\\u009bb");
}

TEST(RenderTest, NoteHasNothingToRender) {
  v1::Payload p;
  p.set_kind("note");
  EXPECT_EQ(RenderText(p), "");
}

TEST(IdentifiedTest, Cases) {
  EXPECT_TRUE(Identified(Valid("referral")));
  EXPECT_TRUE(Identified(Valid("intel.report")));
  EXPECT_FALSE(Identified(Valid("alert")));  // described only
  EXPECT_FALSE(Identified(Valid("sitrep")));
  v1::Payload p = Valid("alert");
  p.mutable_alert()->mutable_persons(0)->set_date_of_birth("1980-01-01");
  EXPECT_TRUE(Identified(p));
  p = Valid("intel.request");
  p.mutable_intel_request()->add_persons()->add_identifiers("phone:+1");
  EXPECT_TRUE(Identified(p));
}

}  // namespace
}  // namespace kontor::kinds

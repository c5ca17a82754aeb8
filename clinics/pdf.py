"""The visit record as a printable PDF, Vietnamese diacritics included.

fpdf2 embeds a Unicode TrueType font (DejaVu Sans, Debian's fonts-dejavu-core), so "Tăng huyết áp"
prints as written, whatever viewer or printer the commune station has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fpdf import FPDF

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


class FontMissing(RuntimeError):
    """The Unicode font is not installed (apt-get install fonts-dejavu-core)."""


def _pdf() -> FPDF:
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if not regular.exists() or not bold.exists():
        raise FontMissing(f"{regular} is missing: install Debian's fonts-dejavu-core")
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    return pdf


def visit_record_pdf(record: dict[str, Any], *, facility: str, patient: str, doctor: str, when: str,
                     version: int, signatures: list[str]) -> bytes:
    pdf = _pdf()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(text: str) -> None:
        pdf.set_font("DejaVu", "B", 12)
        pdf.ln(2)
        pdf.multi_cell(width, 7, text)

    def line(label: str, value: str) -> None:
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(width, 5.5, label, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 10)
        pdf.multi_cell(width, 5.5, value or "—", new_x="LMARGIN", new_y="NEXT")

    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(width, 8, "PHIẾU KHÁM BỆNH TỪ XA", align="C")
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(width, 5.5, f"{facility}\nNgười bệnh: {patient}\nBác sĩ: {doctor}\nThời gian: {when}"
                               f"\nPhiên bản hồ sơ: {version}")
    triage = record.get("triage", {})
    heading("Các bước")
    line("Xác định người bệnh", str(record.get("identification", {}).get("method", "")))
    line("Phân loại mức độ", f"{triage.get('urgency', '')} {triage.get('escalation') or ''}".strip())
    soap = record.get("soap", {})
    heading("Bệnh án (SOAP)")
    for key, label in (("subjective", "Triệu chứng (S)"), ("objective", "Khám (O)"),
                       ("assessment", "Đánh giá (A)"), ("plan", "Kế hoạch (P)")):
        line(label, soap.get(key, ""))
    heading("Chẩn đoán")
    for diagnosis in record.get("diagnoses", []):
        line(diagnosis["icd10"] + (" (chính)" if diagnosis.get("primary") else ""), diagnosis.get("text", ""))
    prescription = record.get("prescription") or {}
    if prescription.get("items"):
        heading("Đơn thuốc" + (f" — mã {prescription['e_prescription_code']}"
                               if prescription.get("e_prescription_code") else ""))
        for number, item in enumerate(prescription["items"], start=1):
            line(f"{number}. {item['medication']}",
                 f"{item['dose']}, {item['frequency']}, {item['duration_days']} ngày. {item.get('instructions', '')}")
    follow_up = record.get("follow_up") or {}
    if follow_up.get("note"):
        heading("Hẹn tái khám")
        line("", follow_up["note"])
    heading("Chữ ký")
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(width, 5.5, "\n".join(signatures) or "Chưa ký")
    return bytes(pdf.output())


SEX_VI = {"male": "Nam", "female": "Nữ", "other": "Khác"}
ROLE_VI = {"chair": "Chủ trì", "secretary": "Thư ký", "member": "Thành viên", "requester": "Cơ sở yêu cầu"}
URGENCY_VI = {"routine": "Thường quy", "urgent": "Khẩn", "emergency": "Cấp cứu"}


def consultation_minutes_pdf(minutes: dict[str, Any], *, version: int, signatures: list[str]) -> bytes:
    """Biên bản hội chẩn: the fields usually found on Thông tư 49/2017 Phụ lục I (not verified against
    the appendix itself), then the chair's conclusion on each question, then the signatures."""
    pdf = _pdf()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(text: str) -> None:
        pdf.set_font("DejaVu", "B", 12)
        pdf.ln(2)
        pdf.multi_cell(width, 7, text, new_x="LMARGIN", new_y="NEXT")

    def line(label: str, value: str) -> None:
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(width, 5.5, label, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 10)
        pdf.multi_cell(width, 5.5, value or "—", new_x="LMARGIN", new_y="NEXT")

    def person(entry: dict[str, Any] | None) -> str:
        return f"{entry['name']} ({entry['facility']})" if entry else "—"

    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(width, 8, "BIÊN BẢN HỘI CHẨN TỪ XA", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    pdf.multi_cell(width, 4.5, str(minutes.get("form", "")), align="C", new_x="LMARGIN", new_y="NEXT")
    heading("Thông tin chung")
    line("Cơ sở yêu cầu hội chẩn", str(minutes.get("requesting_facility", "")))
    line("Cơ sở tư vấn", f"{minutes.get('consulted_facility', '')} — {minutes.get('department', '')}")
    line("Thời gian", str(minutes.get("started_at") or minutes.get("scheduled_start") or ""))
    line("Chủ trì", person(minutes.get("chair")))
    line("Thư ký", person(minutes.get("secretary")))
    line("Thành phần tham gia", "\n".join(f"{p['name']} — {ROLE_VI.get(p['role'], p['role'])} ({p['facility']})"
                                          for p in minutes.get("participants", [])))
    patient = minutes.get("patient") or {}
    heading("Người bệnh")
    line("Họ tên", str(patient.get("name", "")))
    line("Ngày sinh, giới", f"{patient.get('birth_date', '')}, {SEX_VI.get(patient.get('sex', ''), '')}")
    line("Địa chỉ", str(patient.get("address", "")))
    line("Số thẻ BHYT", str(patient.get("bhyt") or ""))
    heading("Tóm tắt")
    line("Lý do hội chẩn", f"{minutes.get('reason', '')} ({URGENCY_VI.get(minutes.get('urgency', ''), '')})")
    line("Tóm tắt bệnh sử, diễn biến", str(minutes.get("history", "")))
    line("Khám và cận lâm sàng", str(minutes.get("findings", "")))
    heading("Kết luận từng vấn đề")
    for question in minutes.get("questions", []):
        line(f"{question['position']}. {question['question']}", str(question.get("conclusion") or ""))
    heading("Kết luận chung")
    diagnosis = minutes.get("diagnosis") or {}
    line("Kết luận, chẩn đoán", str(minutes.get("conclusion", "")) + (
        f"\nICD-10: {diagnosis['icd10']} {diagnosis.get('text') or ''}" if diagnosis.get("icd10") else ""))
    line("Hướng xử trí", str(minutes.get("management", "")))
    heading(f"Chữ ký (phiên bản biên bản {version})")
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(width, 5.5, "\n".join(signatures) or "Chưa ký", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())

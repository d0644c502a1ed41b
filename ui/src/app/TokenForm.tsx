// Asks for the gateway token (JWT) when none is stored or the last one expired.
import { useState, type FormEvent } from "react";
import { looksLikeJwt, tokenSet } from "./auth";
import { useAppDispatch, useAppSelector } from "./hooks";

export function TokenForm() {
  const dispatch = useAppDispatch();
  const token = useAppSelector((s) => s.auth.token);
  const stateError = useAppSelector((s) => s.auth.error);
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const shown = error ?? stateError;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const value = text.trim();
    if (!looksLikeJwt(value)) {
      setError("That is not a JWT (three dot-separated parts).");
      return;
    }
    setError(null);
    setText("");
    dispatch(tokenSet(value));
  };
  return (
    <form id="token-form" className="token-form card" hidden={token !== null} onSubmit={submit}>
      <label htmlFor="token-input">
        Gateway token (JWT). It stays in this tab: the page keeps it in session storage and sends it only to this gateway.
      </label>
      <textarea id="token-input" rows={3} spellCheck={false} autoComplete="off" placeholder="eyJhbGciOi..." value={text} onChange={(e) => setText(e.target.value)} />
      <button type="submit" className="primary">
        Connect
      </button>
      <p id="token-error" className="error" role="alert" hidden={!shown}>
        {shown ?? ""}
      </p>
    </form>
  );
}

/** The loading, empty and error states every panel shares. */
export function Loading({ what }: { what: string }) {
  return (
    <p className="state loading" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: React.ReactNode }) {
  return (
    <p className="state empty" role="status">
      {children}
    </p>
  );
}

export function ErrorMessage({ what, message }: { what: string; message: string }) {
  return (
    <p className="state error" role="alert">
      Cannot load {what}: {message}
    </p>
  );
}

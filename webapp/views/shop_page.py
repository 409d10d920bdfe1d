"""Shop settings: the signed-in merchant's shop (one each, keyed by their users.id): its name, logo
and website, shown on the share pages of their models."""

import streamlit as st

from webapp import shop, ui

user = ui.require_user()  # the iso work passes it to the library calls
ui.header("shop")
data = ui.data_dir()
current = shop.get(data, user.id)

st.title("Your shop")
st.markdown("Shoppers see your shop's name and logo at the top of every 3D page you share, with a link "
            "back to your website. Each model's own product page is set on its page, under "
            "**Add it to your shop**.")

with st.form("shop_form", border=True):
    name = st.text_input("Shop name", value=current.name, max_chars=shop.MAX_NAME,
                         placeholder="Oak & Co. Furniture")
    website = st.text_input("Your website", value=current.website, max_chars=shop.MAX_URL,
                            placeholder="https://myshop.example")
    logo = st.file_uploader("Logo (PNG, JPG or WebP, under 2 MB)", type=["png", "jpg", "jpeg", "webp"], max_upload_size=2,
                            help="It is shown at most 36 pixels high; a wide logo on a clear background looks best.")
    saved = st.form_submit_button("Save", icon=":material/save:", type="primary")

if saved:
    try:
        shop.clean_url(website, "The shop's web address")  # checked before anything is stored
        if logo is not None:
            current = shop.set_logo(data, logo.getvalue(), shop_id=user.id)
        current = shop.save(data, name=name, website=website, shop_id=user.id)
    except shop.ShopError as error:
        st.error(ui.md(error.message), icon=":material/error:")  # nothing was stored; the fields keep what was typed
    else:
        st.success("Saved. Your share pages show it now.", icon=":material/check:")

st.subheader("How it looks")
if current.logo is not None:
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.image(str(current.logo), width=160)
    if right.button("Remove the logo", icon=":material/delete:"):
        current = shop.remove_logo(data, shop_id=user.id)
        st.rerun()
if current.known:
    st.markdown(f"**{ui.md(current.name or 'Your shop')}**" + (f"  ·  {ui.md(current.website)}" if current.website else ""))
else:
    st.caption("Nothing set yet: share pages show Plinth's name instead.")
